/**
 * `GET /authorize` in upstream mode: the request is validated and saved like
 * any other (the engine's `authorize`, with our PKCE verifier and state for
 * the upstream), then the user goes to the upstream provider to sign in.
 */
import type { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Either, Option } from "effect"
import { Federation, startUpstreamAuthorization } from "../../oauth/federation.ts"
import { authorizationFailure, authorizationRequestFrom } from "../authorizationRequest.ts"
import { admitAuthorizationRequest } from "../authorizeLimits.ts"
import { queryParams } from "../body.ts"
import { notFoundResponse, redirectResponse } from "../respond.ts"

/**
 * Run a handler of upstream mode with the `Federation`; 404 without it.
 * Every failure is answered as the front channel answers them.
 */
export const inUpstreamMode = <E, R>(
  handler: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | Federation>
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, Exclude<R, Federation>> =>
  Effect.flatMap(Effect.serviceOption(Federation), (federation) =>
    Option.isNone(federation)
      ? Effect.succeed(notFoundResponse("upstream federation is not configured"))
      : handler.pipe(Effect.provideService(Federation, federation.value), Effect.catchAll(authorizationFailure)))

/**
 * Validate the authorization request and redirect (302) to the upstream's
 * authorization endpoint. A bad client or redirect URI is shown to the user;
 * any later refusal (and an upstream that cannot be discovered) is redirected
 * to the client. Within the same limits as local mode (`authorizeLimits.ts`).
 */
export const upstreamAuthorize = (request: HttpServerRequest.HttpServerRequest) =>
  inUpstreamMode(Effect.gen(function*() {
    const admitted = yield* admitAuthorizationRequest(request)
    if (Either.isLeft(admitted)) return admitted.left
    const release = admitted.right.release
    const params = yield* queryParams(request).pipe(Effect.tapError(() => release))
    const started = yield* startUpstreamAuthorization(authorizationRequestFrom(params)).pipe(Effect.tapError(() => release))
    return redirectResponse(started.url)
  }))
