/**
 * OTLP export from the server process: a local collector stand-in (a plain
 * `node:http` server in this test) receives the OTLP/HTTP POSTs. With
 * `OTEL_EXPORTER_OTLP_ENDPOINT` and JSON (SQLite store), the spans of a real
 * OAuth flow arrive (the request spans with method, path and status only, and the
 * store spans beneath them in the same trace) and so do the metrics (store
 * operations, tokens issued), with the configured headers and service name,
 * and nothing secret in them. With only a metrics endpoint and the default
 * protobuf encoding, metrics arrive there and no traces are sent.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { createServer, type IncomingHttpHeaders, type Server } from "node:http"
import { setTimeout as sleep } from "node:timers/promises"
import { authorizeHeadless, exchangeCodeRequest, initializeSession, registerPublicClient, tokensOf } from "../support/oauthFlow.ts"
import { type ServerProcess, startServer } from "../support/server.ts"

interface Received {
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
}

/** The collector stand-in: records every POST and answers 200 `{}` (an OTLP success with nothing rejected). */
const startCollector = async () => {
  const received: Array<Received> = []
  const server: Server = createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      received.push({ path: request.url ?? "", headers: request.headers, body: Buffer.concat(chunks) })
      response.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address()
  if (address === null || typeof address === "string") throw new Error("no collector address")
  return {
    url: `http://127.0.0.1:${address.port}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
type Collector = Awaited<ReturnType<typeof startCollector>>

/** Wait until `check` holds (polling what the collector received), or fail after `ms`. */
const eventually = async (what: string, check: () => boolean, ms = 20_000) => {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`the collector did not receive ${what}`)
    await sleep(100)
  }
}

interface KeyValue {
  readonly key: string
  readonly value: { readonly stringValue?: string; readonly intValue?: number | string }
}
interface Span {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly attributes: ReadonlyArray<KeyValue>
}
interface DataPoint {
  readonly attributes: ReadonlyArray<KeyValue>
  readonly asInt?: number
  readonly asDouble?: number
  readonly count?: number
}
interface OtlpMetric {
  readonly name: string
  readonly sum?: { readonly dataPoints: ReadonlyArray<DataPoint> }
  readonly histogram?: { readonly dataPoints: ReadonlyArray<DataPoint> }
}

const attribute = (attributes: ReadonlyArray<KeyValue>, key: string) => {
  const value = attributes.find((a) => a.key === key)?.value
  return value?.stringValue ?? value?.intValue
}

const spansOf = (received: ReadonlyArray<Received>): Array<Span> =>
  received.filter((r) => r.path === "/v1/traces").flatMap((r) => {
    const body = JSON.parse(r.body.toString("utf8")) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<Span> }> }> }
    return body.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans))
  })

/** The metrics of the latest export (they are cumulative). */
const latestMetrics = (received: ReadonlyArray<Received>): Array<OtlpMetric> => {
  const last = received.filter((r) => r.path === "/v1/metrics").at(-1)
  if (last === undefined) return []
  const body = JSON.parse(last.body.toString("utf8")) as { resourceMetrics: Array<{ scopeMetrics: Array<{ metrics: Array<OtlpMetric> }> }> }
  return body.resourceMetrics.flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics))
}

const pointValue = (metrics: ReadonlyArray<OtlpMetric>, name: string, labels: Record<string, string>): number => {
  const metric = metrics.find((m) => m.name === name)
  const points = metric?.sum?.dataPoints ?? metric?.histogram?.dataPoints ?? []
  const point = points.find((p) => Object.entries(labels).every(([key, value]) => attribute(p.attributes, key) === value))
  return point === undefined ? 0 : point.asInt ?? point.asDouble ?? point.count ?? 0
}

/**
 * A collector stand-in and a server (`DEV_AUTO_APPROVE=alice`, plus `env` for
 * the collector's URL) exporting to it, for one describe block: started
 * before its tests, stopped after them.
 */
const exportingServer = (env: (collectorUrl: string) => Record<string, string>) => {
  let collector: Collector | undefined
  let server: ServerProcess | undefined
  beforeAll(async () => {
    collector = await startCollector()
    server = await startServer({ env: { DEV_AUTO_APPROVE: "alice", ...env(collector.url) } })
  }, 60_000)
  afterAll(async () => {
    await server?.stop()
    await collector?.close()
  })
  const started = <A>(value: A | undefined): A => {
    if (value === undefined) throw new Error("the collector and the server start before the tests")
    return value
  }
  return {
    get collector(): Collector {
      return started(collector)
    },
    get server(): ServerProcess {
      return started(server)
    }
  }
}

describe("OTLP/HTTP JSON: traces and metrics at OTEL_EXPORTER_OTLP_ENDPOINT", () => {
  // SQLite: its stores create spans of their own (the memory backend's do not, for speed).
  const running = exportingServer((url) => ({
    STORE: "sqlite",
    OTEL_EXPORTER_OTLP_ENDPOINT: url,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20collector-secret-123,x-tenant=mcp",
    OTEL_SERVICE_NAME: "mcp-otlp-test",
    OTEL_BSP_SCHEDULE_DELAY: "200",
    OTEL_METRIC_EXPORT_INTERVAL: "300"
  }))

  it("the spans of an OAuth flow arrive: request spans with method, path and status, store spans beneath them", { timeout: 60_000 }, async () => {
    const clientId = await registerPublicClient(running.server.url)
    const { code, verifier } = await authorizeHeadless(running.server.url, clientId)
    const tokens = tokensOf(await exchangeCodeRequest(running.server.url, clientId, code, verifier))
    // POST /mcp takes the server's fast path on node:http: its span is the same shape.
    const sessionId = await initializeSession(running.server.url, tokens.access_token)

    await eventually("the token request's span", () =>
      spansOf(running.collector.received).some((s) => s.name === "http.server POST" && attribute(s.attributes, "url.path") === "/token"))
    await eventually("the store spans of the code exchange", () => spansOf(running.collector.received).some((s) => s.name === "OAuth.exchangeCode"))
    const spans = spansOf(running.collector.received)
    const request = spans.find((s) => s.name === "http.server POST" && attribute(s.attributes, "url.path") === "/token")
    expect(request).toBeDefined()
    if (request === undefined) return
    expect(attribute(request.attributes, "http.request.method")).toBe("POST")
    expect(Number(attribute(request.attributes, "http.response.status_code"))).toBe(200)
    // The route's pattern (set by the router, or by the Node fast path that /token and /mcp take); nothing else.
    expect(request.attributes.map((a) => a.key).sort()).toEqual(["http.request.method", "http.response.status_code", "http.route", "url.path"])
    expect(attribute(request.attributes, "http.route")).toBe("/token")
    // The engine's and the store's spans are in the request's trace, under it.
    const byId = new Map(spans.map((s) => [s.spanId, s]))
    const exchange = spans.find((s) => s.name === "OAuth.exchangeCode" && s.traceId === request.traceId)
    expect(exchange?.parentSpanId).toBe(request.spanId)
    const consume = spans.find((s) => s.name === "TokenStore.consumeCode" && s.traceId === request.traceId)
    expect(consume).toBeDefined()
    let ancestor = consume
    while (ancestor?.parentSpanId !== undefined && ancestor.parentSpanId !== "" && ancestor.spanId !== request.spanId) {
      ancestor = byId.get(ancestor.parentSpanId)
    }
    expect(ancestor?.spanId).toBe(request.spanId)
    await eventually("the MCP request's span", () =>
      spansOf(running.collector.received).some((s) => s.name === "http.server POST" && attribute(s.attributes, "url.path") === "/mcp"))
    const mcp = spansOf(running.collector.received).find((s) => s.name === "http.server POST" && attribute(s.attributes, "url.path") === "/mcp")
    expect(mcp?.attributes.map((a) => a.key).sort()).toEqual(["http.request.method", "http.response.status_code", "http.route", "url.path"])
    expect(attribute(mcp?.attributes ?? [], "http.route")).toBe("/mcp")
    // The authorize request's span has its path only: the query (state, PKCE challenge) is not recorded.
    const authorize = spans.find((s) => s.name === "http.server GET" && attribute(s.attributes, "url.path") === "/authorize")
    expect(authorize).toBeDefined()

    // Nothing secret in any export: not the code, the tokens or the session id, not the collector's own credential.
    const exported = running.collector.received.map((r) => r.body.toString("utf8")).join("\n")
    for (const secret of [code, verifier, tokens.access_token, tokens.refresh_token, sessionId]) expect(exported.includes(secret)).toBe(false)
    for (const line of [...running.server.lines(), ...running.server.errors()]) expect(line.includes("collector-secret-123")).toBe(false)
  })

  it("the metrics arrive, with the headers and the service name", { timeout: 60_000 }, async () => {
    await eventually("a tokens-issued count", () =>
      pointValue(latestMetrics(running.collector.received), "mcp_oauth_tokens_issued_total", { grant_type: "authorization_code", token: "access" }) >= 1)
    const metrics = latestMetrics(running.collector.received)
    expect(pointValue(metrics, "mcp_store_operations_total", { operation: "TokenStore.consumeCode", backend: "sqlite" })).toBeGreaterThanOrEqual(1)
    expect(pointValue(metrics, "mcp_store_operation_duration_seconds", { operation: "TokenStore.consumeCode", backend: "sqlite" }))
      .toBeGreaterThanOrEqual(1)
    const post = running.collector.received.find((r) => r.path === "/v1/metrics")
    expect(post?.headers["content-type"]).toMatch(/^application\/json/)
    expect(post?.headers["authorization"]).toBe("Bearer collector-secret-123")
    expect(post?.headers["x-tenant"]).toBe("mcp")
    const body = JSON.parse(post?.body.toString("utf8") ?? "{}") as { resourceMetrics: Array<{ resource: { attributes: Array<KeyValue> } }> }
    expect(attribute(body.resourceMetrics[0]?.resource.attributes ?? [], "service.name")).toBe("mcp-otlp-test")
    // The startup line says what goes where (the collector's origin only).
    const announced = running.server.lines().map((l) => JSON.parse(l) as { message: string; annotations: Record<string, unknown> })
      .find((l) => l.message === "exporting over OTLP")
    expect(announced?.annotations).toEqual({ signals: "traces, metrics", endpoints: running.collector.url })
    // OTLP export does not open /metrics.
    expect((await fetch(`${running.server.url}/metrics`)).status).toBe(404)
  })
})

describe("OTLP/HTTP protobuf: metrics only, at their own endpoint", () => {
  const running = exportingServer((url) => ({
    STORE: "memory",
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${url}/custom/metrics`,
    OTEL_METRIC_EXPORT_INTERVAL: "300"
  }))

  it("POSTs protobuf to the metrics endpoint as given, and sends no traces", { timeout: 60_000 }, async () => {
    await registerPublicClient(running.server.url)
    await eventually("a protobuf metrics export naming the store operations", () =>
      running.collector.received.some((r) => r.path === "/custom/metrics" && r.body.includes("ClientStore.register")))
    const post = running.collector.received.find((r) => r.path === "/custom/metrics")
    expect(post?.headers["content-type"]).toBe("application/x-protobuf")
    expect(post?.body.includes("mcp_store_operations_total")).toBe(true)
    expect(running.collector.received.every((r) => r.path === "/custom/metrics")).toBe(true)
  })
})

describe("OTLP at shutdown: with exports minutes apart, the last spans and metrics go out as the server stops", () => {
  const running = exportingServer((url) => ({
    STORE: "sqlite",
    OTEL_EXPORTER_OTLP_ENDPOINT: url,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_BSP_SCHEDULE_DELAY: "600000",
    OTEL_METRIC_EXPORT_INTERVAL: "600000"
  }))

  it("nothing before the stop; the request's spans and the metrics after it", { timeout: 30_000 }, async () => {
    await registerPublicClient(running.server.url)
    await sleep(500)
    expect(running.collector.received).toEqual([])
    expect(await running.server.stop()).toBe(0)
    expect(spansOf(running.collector.received).some((s) => s.name === "ClientStore.register")).toBe(true)
    expect(spansOf(running.collector.received).some((s) => s.name === "http.server POST" && attribute(s.attributes, "url.path") === "/register"))
      .toBe(true)
    expect(pointValue(latestMetrics(running.collector.received), "mcp_store_operations_total", { operation: "ClientStore.register", backend: "sqlite" }))
      .toBe(1)
  })
})
