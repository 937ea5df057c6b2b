/**
 * The server on Node's `node:http`: `layer` listens on an address;
 * `toHandler` gives a `(request, response)` handler to mount in your own
 * `node:http` server or an Express-style app.
 *
 * Both serve `POST /mcp`, the endpoint every tool call goes through, and
 * `POST /token` (every refresh) on a fast path: straight from `node:http`
 * into one Effect on the server's runtime (the same handler code, its body
 * read with the same limit, the same CORS headers and error answers, its log
 * line in the same shape), without the platform's router and middleware,
 * which cost more than the endpoint itself on these paths (see the load
 * bench). Everything else goes through the server's `HttpApp`.
 */
import { type HttpBody, HttpMiddleware, HttpServerError, type HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Cause, type Clock, Context, Effect, Exit, Layer, ManagedRuntime, Runtime, Stream } from "effect"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { logDetail } from "../errors/render.ts"
import { BodyTooLarge, UnreadableBody } from "./body.ts"
import { tokenHandler } from "./backChannel.ts"
import { allowAnyOrigin } from "./cors.ts"
import { type McpRequest, mcpPost } from "./mcp/endpoint.ts"
import { metricsApp } from "./metrics.ts"
import { httpApp, layer as serverLayer, type McpServerOptions, type McpServerRequirements, type McpServerServices } from "./McpServer.ts"
import { errorResponse } from "./respond.ts"
import { RequestLog } from "./requestLog.ts"
import { HttpLimits } from "./limits.ts"
import { pathOf, withRequestSpan } from "./requestSpan.ts"

/** Where to listen. */
export interface ListenOptions {
  readonly port: number
  readonly host?: string
}

/** Where the server listens, once it does: `host:port`. */
export class ListeningAddress extends Context.Tag("mcp-oauth-store/ListeningAddress")<ListeningAddress, string>() {}

type Services = McpServerServices | McpServerRequirements
type NodeHandler = (request: IncomingMessage, response: ServerResponse) => void

/** Node's headers as the endpoint reads them: one string per header (only `set-cookie` may repeat, and requests carry none). */
const headersOf = (request: IncomingMessage): Readonly<Record<string, string | undefined>> => {
  const headers = request.headers
  for (const name in headers) {
    if (Array.isArray(headers[name])) {
      return Object.fromEntries(Object.entries(headers).map(([key, value]) => [key, Array.isArray(value) ? value.join(", ") : value]))
    }
  }
  return headers as Readonly<Record<string, string | undefined>>
}

/**
 * Read the body, refused once it passes `limit` bytes, then `done` with its
 * text or why it could not be had, once. Plain callbacks: the request's
 * fiber starts once the body is in, with nothing left to wait for. (The
 * listeners are written inline: under tsx, a named closure costs a `name`
 * definition per request.)
 */
const readBody = (request: IncomingMessage, limit: number, done: (read: string | BodyTooLarge | UnreadableBody) => void): void => {
  const declared = Number(request.headers["content-length"] ?? "0")
  if (Number.isFinite(declared) && declared > limit) {
    request.resume()
    return done(new BodyTooLarge({ limit }))
  }
  const chunks: Array<Buffer> = []
  let size = 0
  let settled = false
  request.on("data", (chunk: Buffer) => {
    if (settled) return // refused already: the rest is drained, not kept
    size += chunk.length
    if (size <= limit) return void chunks.push(chunk)
    settled = true
    done(new BodyTooLarge({ limit }))
  })
  request.once("end", () => {
    if (settled) return
    settled = true
    done(chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8"))
  })
  request.once("error", () => {
    if (settled) return
    settled = true
    done(new UnreadableBody())
  })
}

/** Write a complete (JSON or empty) answer of the endpoint to Node. */
const writeAnswer = (response: HttpServerResponse.HttpServerResponse, out: ServerResponse): void => {
  const body = response.body
  if (body._tag === "Uint8Array") {
    out.writeHead(response.status, { ...response.headers, "content-type": body.contentType, "content-length": body.contentLength })
    out.end(body.body)
  } else {
    out.writeHead(response.status, response.headers)
    out.end()
  }
}

/** Write a streamed answer (a `subscriptions/listen` stream) as it comes, ending the response when the stream ends. */
const writeStream = (response: HttpServerResponse.HttpServerResponse, body: HttpBody.Stream, out: ServerResponse): Effect.Effect<void> =>
  Effect.suspend(() => {
    out.writeHead(response.status, { ...response.headers, "content-type": body.contentType })
    out.flushHeaders()
    return Stream.runForEach(body.stream, (chunk) => Effect.sync(() => void out.write(chunk))).pipe(
      Effect.catchAllCause(() => Effect.void),
      Effect.ensuring(Effect.sync(() => out.end()))
    )
  })

/** What a fast path answers with, given the request's method, headers and body as text. */
type FastEndpoint = (request: McpRequest) => Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, Services>

/**
 * A fast path from `node:http` into `endpoint` (`POST /mcp`, `POST /token`):
 * the body is read first, then one fiber answers (interrupted if the client
 * goes away); a complete answer is written when the fiber ends, a stream by
 * the fiber as it comes. What the platform's middleware does around a route
 * is done here: a defect answered as `errorResponse` answers it, CORS on a
 * CORS path (`cors`), the request span (with the router's `http.route`),
 * the log line. It serves only requests whose path is exactly `route`, so
 * the span and the log line name that path.
 */
const fastHandler = (
  runtime: Runtime.Runtime<Services>,
  clock: Clock.Clock,
  route: string,
  endpoint: FastEndpoint,
  cors: boolean
): NodeHandler => {
  const runFork = Runtime.runFork(runtime)
  const limit = Context.get(runtime.context, HttpLimits).maxBodyBytes
  const log = Context.get(runtime.context, RequestLog)
  return (request, response) => {
    const started = clock.unsafeCurrentTimeNanos()
    const headers = headersOf(request)
    readBody(request, limit, (read) => {
      if (response.destroyed) return
      const text = typeof read === "string" ? Effect.succeed(read) : Effect.fail(read)
      const answered = Effect.catchAllCause(
        endpoint({ method: "POST", headers, text }),
        (cause) => Cause.isInterruptedOnly(cause) ? Effect.failCause(cause) : errorResponse(Cause.squash(cause))
      )
      const program = withRequestSpan({ method: "POST", path: route, headers, route }, cors ? Effect.map(answered, allowAnyOrigin) : answered).pipe(
        Effect.flatMap((answer) => {
          const ms = Math.round(Number(clock.unsafeCurrentTimeNanos() - started) / 1e5) / 10
          const logged = log.record({ method: "POST", path: route, status: answer.status, ms })
          return answer.body._tag === "Stream" ? Effect.zipRight(logged, writeStream(answer, answer.body, response)) : Effect.as(logged, answer)
        })
      )
      const fiber = runFork(program)
      fiber.addObserver((exit) => {
        if (Exit.isSuccess(exit)) {
          if (exit.value !== undefined && !response.headersSent) writeAnswer(exit.value, response)
        } else if (!Cause.isInterruptedOnly(exit.cause) && !response.headersSent) {
          runFork(Effect.logError("request failed").pipe(Effect.annotateLogs("detail", logDetail(Cause.squash(exit.cause)))))
          response.writeHead(500, { "content-type": "application/json" })
          response.end(JSON.stringify({ error: "server_error" }))
        }
      })
      // Most answers are written by now (the fiber ran to its end in `runFork`); one still running is
      // interrupted if the client goes away first.
      if (!response.writableEnded) {
        response.once("close", () => {
          if (!response.writableEnded) fiber.unsafeInterruptAsFork(fiber.id())
        })
      }
    })
  }
}

/**
 * One handler for every request: the fast paths for `POST /mcp` and
 * `POST /token`, the server's `HttpApp` for the rest (a preflight of
 * `/token` too).
 */
const makeNodeHandler: Effect.Effect<NodeHandler, never, Services> = Effect.gen(function*() {
  const platform = yield* NodeHttpServer.makeHandler(httpApp)
  const runtime = yield* Effect.runtime<Services>()
  const clock = yield* Effect.clock
  const mcp = fastHandler(runtime, clock, "/mcp", mcpPost, false)
  const token = fastHandler(runtime, clock, "/token", tokenHandler, true)
  return (request, response) => {
    if (request.method === "POST") {
      const path = pathOf(request.url ?? "")
      if (path === "/mcp") return mcp(request, response)
      if (path === "/token") return token(request, response)
    }
    return platform(request, response)
  }
})

/** Listen on `server`: the address, or the platform's `ServeError` (address in use, not permitted, ...). */
const listenOn = (server: Server, listen: ListenOptions) =>
  Effect.async<string, HttpServerError.ServeError>((resume) => {
    const onError = (cause: Error) => resume(Effect.fail(new HttpServerError.ServeError({ cause })))
    server.once("error", onError)
    server.listen(listen.port, listen.host, () => {
      server.off("error", onError)
      const address = server.address() as AddressInfo
      resume(Effect.succeed(`${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`))
    })
  })

/** Stop accepting, let in-flight requests finish, then close idle keep-alive connections. */
const close = (server: Server) =>
  Effect.async<void>((resume) => {
    server.close(() => resume(Effect.void))
    server.closeIdleConnections()
  })

/**
 * Serve the server on `node:http` at `port` and `host` while the layer
 * lives; stopping waits for in-flight requests. Provides the address it
 * listens on. The platform's own span per request is off: it would record
 * the full URL (an upstream callback's code) and the response headers (a
 * redirect's code); the server's request span (when a tracer is installed)
 * records method, path and status only.
 */
export const layer = (listen: ListenOptions): Layer.Layer<ListeningAddress, HttpServerError.ServeError, Services> =>
  HttpMiddleware.withTracerDisabledWhen(
    Layer.scoped(
      ListeningAddress,
      Effect.gen(function*() {
        const handler = yield* makeNodeHandler
        const server = createServer({ keepAliveTimeout: 60_000 }, handler)
        return yield* Effect.acquireRelease(listenOn(server, listen), () => close(server))
      })
    ),
    () => true
  )

/** `GET /metrics` alone (Prometheus text) on a port of its own while the layer lives; logs `metrics listening` with its address. */
export const metricsLayer = (listen: ListenOptions): Layer.Layer<never, HttpServerError.ServeError> =>
  HttpMiddleware.withTracerDisabledWhen(
    Layer.scopedDiscard(Effect.gen(function*() {
      const server = createServer(yield* NodeHttpServer.makeHandler(metricsApp))
      const address = yield* Effect.acquireRelease(listenOn(server, listen), () => close(server))
      yield* Effect.logInfo("metrics listening").pipe(Effect.annotateLogs({ address, path: "/metrics" }))
    })),
    () => true
  )

/**
 * The server as a `(request, response)` handler for your own `node:http`
 * server (or Express, Connect, Fastify's raw routes), over a layer of stores
 * and `Crypto`. The services are built at the first request; `dispose`
 * closes them.
 */
export const toHandler = <R = never, E = never>(
  options: McpServerOptions<R>,
  stores: Layer.Layer<McpServerRequirements | R, E>
): { readonly handler: NodeHandler; readonly dispose: () => Promise<void> } => {
  const runtime = ManagedRuntime.make(serverLayer<R>(options).pipe(Layer.provideMerge(stores)))
  let ready: Promise<NodeHandler> | undefined
  const handler: NodeHandler = (request, response) => {
    ready ??= runtime.runPromise(makeNodeHandler)
    ready.then(
      (handle) => handle(request, response),
      () => {
        response.statusCode = 503
        response.end()
      }
    )
  }
  return { handler, dispose: () => runtime.dispose() }
}
