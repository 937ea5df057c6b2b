/**
 * `ClientMetadataDocuments` on Node (`node:https`), safe against server-side
 * request forgery:
 *
 * - https only; the URL's credentials, fragment and non-default schemes refused;
 * - the address connected to must be public (see `addresses.ts`): an IP
 *   literal is checked before connecting; a host name is resolved by our own
 *   `lookup`, which refuses when any of its addresses is not public and hands
 *   the checked addresses to the socket, so the check and the connection use
 *   the same answer (no second resolution to rebind); the connected socket's
 *   remote address is checked again;
 * - no redirect is followed (a 3xx is a refusal), only 200 is accepted;
 * - only `application/json` (or `+json`); a declared length over the limit is
 *   refused before reading, and the body is aborted as soon as it passes it;
 * - the whole fetch is bounded in time (Effect's `Clock`), the connection
 *   destroyed on timeout or interruption; one fresh connection per fetch.
 *
 * `allowLoopback` (development only) lets the fetch reach loopback addresses,
 * never other private ones; plain http is never allowed.
 */
import { type Config, type ConfigError, Duration, Effect, Layer } from "effect"
import { lookup as dnsLookup, type LookupAddress } from "node:dns"
import { request } from "node:https"
import { isIP, type LookupFunction, type Socket } from "node:net"
import {
  ClientMetadataDocuments,
  ClientMetadataFetchError,
  type ClientMetadataFetchReason,
  type FetchedClientMetadata
} from "../../services/ClientMetadataDocuments.ts"
import { addressProblem } from "./addresses.ts"

/** How the Node fetcher fetches: the development switch, limits, trusted CAs and name resolution. */
export interface NodeClientMetadataOptions {
  /** Development only: also fetch from loopback addresses (a document server on this machine). Default false. */
  readonly allowLoopback?: boolean
  /** The whole fetch, connection to last byte (default 5 seconds). */
  readonly timeout?: Duration.DurationInput
  /** The largest document accepted, in bytes (default 5 KiB, as the CIMD draft suggests). */
  readonly maxBytes?: number
  /** Certificate authorities to trust instead of Node's (PEM): a private PKI, or a test's own. */
  readonly ca?: string | ReadonlyArray<string>
  /** Resolve a host name to its addresses (default: the system resolver, `dns.lookup` with `all`). */
  readonly resolve?: (hostname: string) => Promise<ReadonlyArray<LookupAddress>>
}

const DEFAULT_MAX_BYTES = 5 * 1024
const DEFAULT_TIMEOUT = Duration.seconds(5)

const failure = (reason: ClientMetadataFetchReason, description: string) => new ClientMetadataFetchError({ reason, description })

const systemResolve = (hostname: string): Promise<ReadonlyArray<LookupAddress>> =>
  new Promise((resolve, reject) =>
    dnsLookup(hostname, { all: true, verbatim: true }, (error, addresses) => (error === null ? resolve(addresses) : reject(error)))
  )

/** `application/json` or any `+json` type, parameters ignored. */
const isJsonType = (contentType: string | undefined): boolean => {
  const type = (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? ""
  return type === "application/json" || /^application\/[a-z0-9.!#$&^_-]+\+json$/.test(type)
}

/** Build the service. */
export const make = (options: NodeClientMetadataOptions = {}): ClientMetadataDocuments.Service => {
  const policy = { allowLoopback: options.allowLoopback === true }
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES
  const timeout = Duration.decode(options.timeout ?? DEFAULT_TIMEOUT)
  const resolve = options.resolve ?? systemResolve
  const ca = options.ca === undefined ? undefined : typeof options.ca === "string" ? options.ca : [...options.ca]

  const fetchOnce = (url: string) =>
    Effect.async<FetchedClientMetadata, ClientMetadataFetchError>((resume) => {
      let settled = false
      /** The refusal that explains a destroyed request, when it was ours. */
      let refusal: ClientMetadataFetchError | undefined
      const settle = (outcome: Effect.Effect<FetchedClientMetadata, ClientMetadataFetchError>) => {
        if (settled) return
        settled = true
        resume(outcome)
      }
      const refuse = (error: ClientMetadataFetchError) => settle(Effect.fail(error))

      if (!URL.canParse(url)) {
        refuse(failure("Forbidden", "not a URL"))
        return
      }
      const target = new URL(url)
      if (target.protocol !== "https:") {
        refuse(failure("Forbidden", "only https is fetched"))
        return
      }
      if (target.username !== "" || target.password !== "") {
        refuse(failure("Forbidden", "the URL carries credentials"))
        return
      }
      const host = target.hostname.startsWith("[") ? target.hostname.slice(1, -1) : target.hostname
      if (isIP(host) !== 0) {
        const problem = addressProblem(host, policy)
        if (problem !== undefined) {
          refuse(failure("Forbidden", `the host is ${problem}`))
          return
        }
      }

      /** Resolve, refuse unless every address is allowed, and connect to the addresses checked here. */
      const lookup: LookupFunction = (hostname, lookupOptions, callback) => {
        resolve(hostname).then((addresses) => {
          const family = lookupOptions.family === 4 || lookupOptions.family === 6 ? lookupOptions.family : undefined
          const usable = addresses.filter((a) => family === undefined || a.family === family)
          const bad = usable.map((a) => addressProblem(a.address, policy)).find((p) => p !== undefined)
          if (usable.length === 0 || bad !== undefined) {
            refusal = failure("Forbidden", usable.length === 0 ? "the host has no address" : `the host resolves to ${bad}`)
            callback(refusal, "", 0)
            return
          }
          const [first] = usable
          if (lookupOptions.all === true) callback(null, usable.map((a) => ({ address: a.address, family: a.family })))
          else if (first !== undefined) callback(null, first.address, first.family)
        }, (error: NodeJS.ErrnoException) => callback(error, "", 0))
      }

      const req = request({
        host,
        port: target.port === "" ? 443 : Number(target.port),
        path: `${target.pathname}${target.search}`,
        method: "GET",
        headers: { accept: "application/json" },
        lookup,
        agent: false,
        ...(isIP(host) === 0 ? { servername: host } : {}),
        ...(ca === undefined ? {} : { ca })
      })

      const abort = (error: ClientMetadataFetchError) => {
        refusal = error
        req.destroy(error)
        refuse(error)
      }

      req.on("socket", (socket: Socket) => {
        // What was actually connected to: checked once more before anything is read.
        socket.once("connect", () => {
          const remote = socket.remoteAddress
          const problem = remote === undefined ? "unknown" : addressProblem(remote, policy)
          if (problem !== undefined) abort(failure("Forbidden", `connected to ${problem}`))
        })
      })

      req.on("response", (response) => {
        const status = response.statusCode ?? 0
        if (status >= 300 && status < 400) return abort(failure("Redirect", `answered ${status}; redirects are not followed`))
        if (status !== 200) return abort(failure("Status", `answered ${status}`))
        if (!isJsonType(response.headers["content-type"])) {
          return abort(failure("ContentType", "the document is not application/json"))
        }
        const declared = Number(response.headers["content-length"] ?? Number.NaN)
        if (declared > maxBytes) return abort(failure("TooLarge", `the document is larger than ${maxBytes} bytes`))
        const chunks: Array<Buffer> = []
        let size = 0
        response.on("data", (chunk: Buffer) => {
          size += chunk.length
          if (size > maxBytes) abort(failure("TooLarge", `the document is larger than ${maxBytes} bytes`))
          else chunks.push(chunk)
        })
        response.on("end", () => {
          if (settled) return
          let document: unknown
          try {
            document = JSON.parse(Buffer.concat(chunks).toString("utf8"))
          } catch {
            return refuse(failure("Malformed", "the document is not JSON"))
          }
          const cacheControl = response.headers["cache-control"]
          settle(Effect.succeed({ document, cacheControl }))
        })
        response.on("error", () => refuse(refusal ?? failure("Unreachable", "the response was cut off")))
      })

      req.on("error", (error: NodeJS.ErrnoException) => {
        refuse(refusal ?? failure("Unreachable", `no answer (${error.code ?? "connection failed"})`))
      })
      req.end()

      return Effect.sync(() => {
        settled = true
        req.destroy()
      })
    })

  return {
    fetch: (url) =>
      fetchOnce(url).pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => failure("Timeout", `no complete answer within ${Duration.format(timeout)}`)
        }),
        Effect.withSpan("ClientMetadataDocuments.fetch")
      )
  }
}

/** The service as a layer. */
export const layer = (options: NodeClientMetadataOptions = {}): Layer.Layer<ClientMetadataDocuments> =>
  Layer.sync(ClientMetadataDocuments, () => make(options))

/** `layer` with its options read from `Config`. */
export const layerConfig = (
  config: Config.Config<NodeClientMetadataOptions>
): Layer.Layer<ClientMetadataDocuments, ConfigError.ConfigError> => Layer.unwrapEffect(Effect.map(config, layer))
