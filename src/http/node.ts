/**
 * The server on Node's `node:http`: `layer` listens on an address;
 * `toHandler` gives a `(request, response)` handler to mount in your own
 * `node:http` server or an Express-style app.
 */
import { HttpMiddleware, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, ManagedRuntime } from "effect"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import { tracerInstalled } from "../internal/traced.ts"
import { httpApp, layer as serverLayer, type McpServerOptions, type McpServerRequirements } from "./McpServer.ts"

/** Where to listen. */
export interface ListenOptions {
  readonly port: number
  readonly host?: string
}

/**
 * Serve the server's `HttpApp` on `node:http` at `port` and `host` while the
 * layer lives; stopping waits for in-flight requests. The platform's span per
 * request is skipped when no tracer is installed (it would go nowhere and
 * costs tens of microseconds).
 */
export const layer = (listen: ListenOptions) =>
  Layer.unwrapEffect(Effect.map(tracerInstalled, (traced) =>
    HttpMiddleware.withTracerDisabledWhen(HttpServer.serve(httpApp), () => !traced))).pipe(
      Layer.provideMerge(NodeHttpServer.layer(createServer, listen.host === undefined ? { port: listen.port } : { port: listen.port, host: listen.host }))
    )

/** The address the server listens on, as `host:port`. */
export const boundAddress = Effect.map(HttpServer.HttpServer, (server) =>
  server.address._tag === "TcpAddress" ? `${server.address.hostname}:${server.address.port}` : server.address.path)

/**
 * The server as a `(request, response)` handler for your own `node:http`
 * server (or Express, Connect, Fastify's raw routes), over a layer of stores
 * and `Crypto`. The services are built at the first request; `dispose`
 * closes them.
 */
export const toHandler = <R = never, E = never>(
  options: McpServerOptions<R>,
  stores: Layer.Layer<McpServerRequirements | R, E>
): { readonly handler: (request: IncomingMessage, response: ServerResponse) => void; readonly dispose: () => Promise<void> } => {
  const runtime = ManagedRuntime.make(serverLayer<R>(options).pipe(Layer.provideMerge(stores)))
  let ready: Promise<(request: IncomingMessage, response: ServerResponse) => void> | undefined
  const handler = (request: IncomingMessage, response: ServerResponse): void => {
    ready ??= runtime.runPromise(NodeHttpServer.makeHandler(httpApp))
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
