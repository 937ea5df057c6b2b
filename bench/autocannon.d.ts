/**
 * The part of autocannon 9's API the load bench uses (the package ships no
 * types and there is no @types package pinned). Shapes follow its README.
 */
declare module "autocannon" {
  /** One request template; `setupRequest` may rewrite it before each send. */
  export interface AutocannonRequest {
    method?: string
    path?: string
    headers?: Record<string, string>
    body?: string | Buffer
    setupRequest?: (request: AutocannonRequest, context: Record<string, unknown>) => AutocannonRequest | undefined | null
    onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, string | Array<string>>) => void
  }

  /** One connection. */
  export interface Client {
    setRequests(requests: Array<AutocannonRequest>): void
  }

  export interface Options {
    url: string
    connections?: number
    duration?: number
    amount?: number
    timeout?: number
    pipelining?: number
    method?: string
    headers?: Record<string, string>
    body?: string | Buffer
    requests?: Array<AutocannonRequest>
    setupClient?: (client: Client) => void
    verifyBody?: (body: string) => boolean
    excludeErrorStats?: boolean
    title?: string
  }

  /** An hdr-histogram-percentiles-obj summary. */
  export interface Histogram {
    average: number
    mean: number
    stddev: number
    min: number
    max: number
    total: number
    sent?: number
    p2_5: number
    p50: number
    p75: number
    p90: number
    p97_5: number
    p99: number
    p99_9: number
    p99_99: number
    p99_999: number
  }

  export interface Result {
    title?: string
    url: string
    requests: Histogram
    latency: Histogram
    throughput: Histogram
    /** Seconds. */
    duration: number
    errors: number
    timeouts: number
    mismatches: number
    non2xx: number
    resets: number
    "1xx": number
    "2xx": number
    "3xx": number
    "4xx": number
    "5xx": number
    statusCodeStats: Record<string, { count: number }>
    connections: number
    pipelining: number
  }

  export interface Instance extends PromiseLike<Result> {
    stop(): void
    /** Every completed response: its status, size in bytes and response time in ms (not rounded). */
    on(event: "response", listener: (client: Client, status: number, bytes: number, responseTime: number) => void): this
  }

  function autocannon(options: Options): Instance
  export default autocannon
}
