/**
 * The server's routes as one `HttpApp`: discovery, the authorization server
 * (registration, the front channel, the back channel), `/mcp`, `/healthz` and
 * `/metrics` (when exposed),
 * around them what every response needs: CORS where browser clients call,
 * the body size limit, an answer for every failure (a JSON 404 for an
 * unknown route, an opaque 500 for a defect), and one log line per request.
 */
import { HttpRouter, HttpServerRequest } from "@effect/platform"
import type { HttpApp } from "@effect/platform"
import { Cause, Clock, Effect, Option } from "effect"
import { Federation } from "../oauth/federation.ts"
import { authorizeGet, authorizePost } from "./authorize.ts"
import { introspectHandler, registerHandler, revokeHandler, tokenHandler } from "./backChannel.ts"
import { readText } from "./body.ts"
import { allowAnyOrigin, isCorsPath, preflight } from "./cors.ts"
import { healthz } from "./health.ts"
import { HttpLimits } from "./limits.ts"
import { metricsRoute } from "./metrics.ts"
import { mcpDelete, mcpGet, mcpPost } from "./mcp/endpoint.ts"
import { authorizationServerMetadata, jwkSet, protectedResourceMetadata } from "./metadata.ts"
import { RequestLog } from "./requestLog.ts"
import { pathOf, withRequestSpan } from "./requestSpan.ts"
import { errorResponse, jsonResponse, notFoundResponse } from "./respond.ts"
import { upstreamAuthorize } from "./upstream/authorize.ts"
import { upstreamCallback } from "./upstream/callback.ts"

/** Run a route's handler with the request. */
const withRequest = <A, E, R>(handler: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<A, E, R>) =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, handler)

/** `GET /authorize`: the upstream provider's sign-in in upstream mode, the consent page otherwise. */
const authorizeFront = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.flatMap(Effect.serviceOption(Federation), (federation) =>
    Option.isSome(federation) ? upstreamAuthorize(request) : authorizeGet(request))

/** Every route of the server. */
export const routes = HttpRouter.empty.pipe(
  HttpRouter.get("/.well-known/oauth-authorization-server", Effect.map(authorizationServerMetadata, (document) => jsonResponse(document))),
  HttpRouter.get("/.well-known/oauth-protected-resource", Effect.map(protectedResourceMetadata("root"), (document) => jsonResponse(document))),
  HttpRouter.get("/.well-known/oauth-protected-resource/mcp", Effect.map(protectedResourceMetadata("mcp"), (document) => jsonResponse(document))),
  HttpRouter.get("/.well-known/jwks.json", Effect.map(jwkSet, (document) => jsonResponse(document))),
  HttpRouter.post("/register", withRequest(registerHandler)),
  HttpRouter.get("/authorize", withRequest(authorizeFront)),
  HttpRouter.post("/authorize", withRequest(authorizePost)),
  HttpRouter.get("/callback", withRequest(upstreamCallback)),
  HttpRouter.post("/token", withRequest((request) => tokenHandler({ method: request.method, headers: request.headers, text: readText(request) }))),
  HttpRouter.post("/revoke", withRequest(revokeHandler)),
  HttpRouter.post("/introspect", withRequest(introspectHandler)),
  HttpRouter.post("/mcp", withRequest((request) => mcpPost({ method: request.method, headers: request.headers, text: readText(request) }))),
  HttpRouter.get("/mcp", withRequest(mcpGet)),
  HttpRouter.del("/mcp", withRequest(mcpDelete)),
  HttpRouter.get("/healthz", healthz),
  HttpRouter.get("/metrics", metricsRoute)
)

/**
 * CORS where a browser client needs it, and an answer for what no handler
 * answered (404 for an unknown route, an opaque 500 for a defect, logged by
 * kind only), so that nothing reaches the platform's empty default responses.
 */
const answerEverything = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<never, R> =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const cors = isCorsPath(pathOf(request.url))
    if (cors && request.method === "OPTIONS") return Effect.succeed(preflight())
    return Effect.catchAllCause(app, (cause) => {
      if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
      const failure = Cause.squash(cause)
      if (typeof failure === "object" && failure !== null && "_tag" in failure && failure._tag === "RouteNotFound") {
        return Effect.succeed(notFoundResponse())
      }
      return errorResponse(failure)
    }).pipe(Effect.map((response) => cors ? allowAnyOrigin(response) : response))
  })

/**
 * Around every request: the body size limit, a span when a tracer is
 * installed, and one log line once the response is ready (method, path,
 * status, duration; never the query, headers or body).
 */
const limitedAndLogged = <R>(app: HttpApp.Default<never, R>): HttpApp.Default<never, R | HttpLimits | RequestLog> =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const limits = yield* HttpLimits
    const started = yield* Clock.currentTimeNanos
    const response = yield* withRequestSpan(
      { method: request.method, path: pathOf(request.url), headers: request.headers },
      HttpServerRequest.withMaxBodySize(app, Option.some(limits.maxBodyBytes))
    )
    const elapsed = Number((yield* Clock.currentTimeNanos) - started) / 1e6
    yield* (yield* RequestLog).record({ method: request.method, path: pathOf(request.url), status: response.status, ms: Math.round(elapsed * 10) / 10 })
    return response
  })

/** The whole server as an `HttpApp`: every route, with CORS, limits, error answers and the request log. */
export const httpApp = limitedAndLogged(answerEverything(routes))
