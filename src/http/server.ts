/**
 * The HTTP server: the API's handlers, one middleware around them all
 * (request log, body size limit, a last answer for defects and unknown
 * routes), served by `@effect/platform-node` on the configured address.
 */
import { HttpApiBuilder, HttpMiddleware, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { HttpApp } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Cause, Clock, Effect, Layer, Option } from "effect"
import { createServer } from "node:http"
import { tracerInstalled } from "../internal/traced.ts"
import { Settings } from "../server/config.ts"
import { ServerApi } from "./api.ts"
import { allowAnyOrigin, isCorsPath, preflight } from "./cors.ts"
import { authorizeGet, authorizePost } from "./authorize.ts"
import { introspectHandler, registerHandler, revokeHandler, tokenHandler } from "./backChannel.ts"
import { authorizationServerMetadata, jwkSet, protectedResourceMetadata } from "./metadata.ts"
import { mcpDelete, mcpGet, mcpPost } from "./mcp/endpoint.ts"
import { errorResponse, notFoundResponse } from "./respond.ts"
import { upstreamAuthorize } from "./upstream/authorize.ts"
import { upstreamCallback } from "./upstream/callback.ts"

const DiscoveryLive = HttpApiBuilder.group(ServerApi, "discovery", (handlers) =>
  handlers
    .handle("authorizationServer", () => authorizationServerMetadata)
    .handle("protectedResource", () => protectedResourceMetadata("root"))
    .handle("protectedResourceMcp", () => protectedResourceMetadata("mcp"))
    .handle("jwks", () => jwkSet.pipe(Effect.map((set) => HttpServerResponse.unsafeJson(set)))))

const OAuthLive = HttpApiBuilder.group(ServerApi, "oauth", (handlers) =>
  Effect.map(Settings, (settings) => {
    const upstream = Option.isSome(settings.upstream)
    return handlers
      .handleRaw("register", ({ request }) => registerHandler(request))
      .handleRaw("authorize", ({ request }) => upstream ? upstreamAuthorize(request) : authorizeGet(request))
      .handleRaw("consent", ({ request }) => authorizePost(request))
      .handleRaw("upstreamCallback", ({ request }) => upstreamCallback(request))
      .handleRaw("token", ({ request }) => tokenHandler(request))
      .handleRaw("revoke", ({ request }) => revokeHandler(request))
      .handleRaw("introspect", ({ request }) => introspectHandler(request))
  }))

const McpLive = HttpApiBuilder.group(ServerApi, "mcp", (handlers) =>
  handlers
    .handleRaw("message", ({ request }) => mcpPost(request))
    .handleRaw("stream", ({ request }) => mcpGet(request))
    .handleRaw("end", ({ request }) => mcpDelete(request)))

/** The API with every handler, needing the services the handlers use. */
export const ApiLive = HttpApiBuilder.api(ServerApi).pipe(Layer.provide([DiscoveryLive, OAuthLive, McpLive]))

/** The path of a request without its query (which may carry codes or state). */
const pathOf = (url: string): string => {
  const at = url.indexOf("?")
  return at === -1 ? url : url.slice(0, at)
}

/**
 * Inside the API, around every handler (the platform writes the response as
 * soon as the API returns it, so anything that changes a response lives
 * here): CORS where a browser client needs it, and an answer for what no
 * handler answered (404 for an unknown route, an opaque 500 for a defect,
 * logged by kind only), so that nothing reaches the platform's empty default
 * responses.
 */
const answerEverything = HttpApiBuilder.middleware((app) =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const cors = isCorsPath(pathOf(request.url))
    if (cors && request.method === "OPTIONS") return Effect.succeed(preflight())
    return Effect.catchAllCause(app, (cause) => {
      if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
      const failure = Cause.squash(cause)
      if (typeof failure === "object" && failure !== null && "_tag" in failure && failure._tag === "RouteNotFound") {
        return Effect.succeed(notFoundResponse())
      }
      return errorResponse(failure)
    }).pipe(Effect.map((response) => cors ? allowAnyOrigin(response) : response))
  }) as HttpApp.Default
)

/**
 * Around every request: the body size limit, and one log line once the
 * response is written (method, path, status, duration; never the query,
 * headers or body).
 */
export const serverMiddleware = (maxBodyBytes: number) => (app: HttpApp.Default): HttpApp.Default =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const started = yield* Clock.currentTimeNanos
    const response = yield* HttpServerRequest.withMaxBodySize(app, Option.some(maxBodyBytes))
    const elapsed = Number((yield* Clock.currentTimeNanos) - started) / 1e6
    yield* Effect.logInfo("request").pipe(
      Effect.annotateLogs({
        method: request.method,
        path: pathOf(request.url),
        status: response.status,
        ms: Math.round(elapsed * 10) / 10
      })
    )
    return response
  })

/** Log the address once the server listens and its handlers are attached. */
const logListening = Effect.gen(function*() {
  const settings = yield* Settings
  const address = (yield* HttpServer.HttpServer).address
  const bound = address._tag === "TcpAddress" ? `${address.hostname}:${address.port}` : address.path
  yield* Effect.logInfo("listening").pipe(Effect.annotateLogs({ address: bound, url: settings.publicUrl, store: settings.store }))
})

/** The server on the configured host and port; needs the settings and every service the handlers use. */
export const serverLayer = (settings: { readonly host: string; readonly port: number; readonly maxBodyBytes: number }) =>
  Layer.unwrapEffect(Effect.map(tracerInstalled, (traced) =>
    // The platform opens a span per request; with no tracer installed it goes nowhere and costs
    // tens of microseconds (see src/internal/traced.ts), so it is skipped then.
    HttpMiddleware.withTracerDisabledWhen(HttpApiBuilder.serve(serverMiddleware(settings.maxBodyBytes)), () => !traced)
  )).pipe(
    Layer.provide(answerEverything),
    Layer.provide(ApiLive),
    Layer.tap(() => logListening),
    Layer.provide(NodeHttpServer.layer(createServer, { port: settings.port, host: settings.host }))
  )
