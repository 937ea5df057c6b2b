/**
 * The front channel's shared pieces: an authorization request read from the
 * query, and how a refused request is answered: on a page for the user when
 * the client or its redirect URI is not known good (RFC 6749 §4.1.2.1: never
 * redirect then), else by redirecting the error to the client.
 */
import type { HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { isOAuthError } from "../errors/OAuthError.ts"
import { AuthorizationErrorRedirect, type AuthorizationRequest, redirectLocation } from "../oauth/authorize.ts"
import type { FormParams } from "./body.ts"
import { errorPage } from "./pages.ts"
import { errorResponse, htmlResponse, redirectResponse } from "./respond.ts"

/** The RFC 6749 §4.1.1 / RFC 7636 / RFC 8707 / RFC 9449 §10 parameters of `/authorize`. */
export const authorizationRequestFrom = (params: FormParams): AuthorizationRequest => ({
  responseType: params["response_type"],
  clientId: params["client_id"],
  redirectUri: params["redirect_uri"],
  scope: params["scope"],
  state: params["state"],
  codeChallenge: params["code_challenge"],
  codeChallengeMethod: params["code_challenge_method"],
  resource: params["resource"],
  dpopJkt: params["dpop_jkt"]
})

/**
 * Answer a failed authorization request: `AuthorizationErrorRedirect` goes to
 * the client; an OAuth error raised before the redirect URI was verified is
 * shown to the user (400); anything else is rendered as a JSON error (store
 * outage 503, defect 500).
 */
export const authorizationFailure = (error: unknown): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
  if (error instanceof AuthorizationErrorRedirect) {
    return Effect.succeed(redirectResponse(redirectLocation(error.redirect)))
  }
  if (isOAuthError(error) && error.status < 500) {
    return Effect.succeed(htmlResponse(errorPage("Authorization request refused", error.description ?? error.error), { status: 400 }))
  }
  return errorResponse(error)
}
