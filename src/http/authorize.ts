/**
 * `/authorize` in local mode. GET validates the request and saves it as a
 * pending authorization, then either approves it at once (the development
 * switch `DEV_AUTO_APPROVE`) or renders the consent page. POST is the consent
 * form: CSRF-checked, then Deny, or Approve signed in with an API key and
 * with the scopes the user left ticked. Failures before the client's redirect
 * URI is verified are shown to the user; later ones go to the client.
 *
 * GET is paced per client address and reserves its pending authorization in
 * the budget all anonymous requests share (`authorizeLimits.ts`). Wrong API
 * keys are limited per client address, per user and per pending
 * authorization, across instances (`consent/signInLimits.ts`): the last
 * failure an authorization may have refuses it with `access_denied`; a spent
 * address or user budget is a 429 page until it refills.
 */
import type { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Either, Option } from "effect"
import {
  approve,
  authorize,
  deny,
  type PendingAuthorization,
  pendingAuthorization,
  redirectLocation
} from "../oauth/authorize.ts"
import { OAuthConfig } from "../oauth/config.ts"
import { Federation } from "../oauth/federation.ts"
import { formatScope } from "../oauth/scopes.ts"
import type { ClientStore } from "../services/ClientStore.ts"
import type { Crypto } from "../services/Crypto.ts"
import type { RateLimiter } from "../services/RateLimiter.ts"
import type { TokenStore } from "../services/TokenStore.ts"
import { authorizationFailure, authorizationRequestFrom } from "./authorizationRequest.ts"
import { admitAuthorizationRequest } from "./authorizeLimits.ts"
import { type FormParams, queryParams, readForm } from "./body.ts"
import { authorizePath, checkCsrf, issueCsrf, withCsrfCookie } from "./consent/csrf.ts"
import { consentPage, formActionSource, grantedScopesFrom, ScopeDescriptions } from "./consent/page.ts"
import { SignIn } from "./consent/signIn.ts"
import { attemptSignIn } from "./consent/signInLimits.ts"
import type { HttpLimits } from "./limits.ts"
import { retryAfterSeconds, waitPage } from "./limits.ts"
import { errorPage } from "./pages.ts"
import { htmlResponse, redirectResponse } from "./respond.ts"

/** What the `/authorize` handlers need. */
export type AuthorizeServices = SignIn | OAuthConfig | ClientStore | TokenStore | Crypto | ScopeDescriptions | HttpLimits | RateLimiter

interface ConsentOptions {
  readonly status?: number
  readonly error?: string
  readonly ticked?: ReadonlyArray<string>
}

/** The consent page for a pending authorization, with the CSRF cookie set. */
const consentResponse = (
  request: HttpServerRequest.HttpServerRequest,
  pending: PendingAuthorization,
  options: ConsentOptions = {}
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, SignIn | OAuthConfig | Crypto | ScopeDescriptions> =>
  Effect.gen(function*() {
    const config = yield* OAuthConfig
    const signIn = yield* SignIn
    const scopeDescriptions = yield* ScopeDescriptions
    const csrf = yield* issueCsrf(request, pending.transaction.id)
    const html = consentPage({
      client: pending.client,
      transaction: pending.transaction,
      csrf: csrf.token,
      action: authorizePath(config.issuer),
      signInConfigured: signIn.configured,
      error: options.error,
      ticked: options.ticked,
      scopeDescriptions
    })
    const redirectTarget = formActionSource(pending.transaction.redirectUri)
    const response = htmlResponse(html, {
      ...(options.status === undefined ? {} : { status: options.status }),
      // The answer to the form redirects to the client; the form posts with an Origin (no-referrer would make it "null").
      formActions: redirectTarget === undefined ? [] : [redirectTarget],
      headers: { "referrer-policy": "same-origin" }
    })
    return withCsrfCookie(response, csrf.nonce, { publicUrl: config.issuer, maxAgeMillis: config.transactionTtl })
  })

const userPage = (status: number, title: string, description: string): HttpServerResponse.HttpServerResponse =>
  htmlResponse(errorPage(title, description), { status })

const forgedForm = () =>
  userPage(
    403,
    "Form not accepted",
    "This consent form could not be verified as coming from this server (it may have expired, or been sent from another site). " +
      "Go back to the application and start signing in again."
  )

const unknownTransaction = () =>
  userPage(
    400,
    "Authorization request not found",
    "This authorization request is unknown, has expired or was already decided. Go back to the application and start again."
  )

/**
 * GET `/authorize`: validate the request (duplicate parameters refused) and
 * save it as a pending authorization; then approve it as the
 * `DEV_AUTO_APPROVE` user with every requested scope, or render the consent
 * page with its CSRF cookie. Upstream mode is routed elsewhere.
 */
export const authorizeGet = (
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, AuthorizeServices> =>
  Effect.gen(function*() {
    const signIn = yield* SignIn
    const admitted = yield* admitAuthorizationRequest(request)
    if (Either.isLeft(admitted)) return admitted.left
    const reservation = admitted.right
    const params = yield* queryParams(request).pipe(Effect.tapError(() => reservation.release))
    const pending = yield* authorize(authorizationRequestFrom(params)).pipe(Effect.tapError(() => reservation.release))
    if (Option.isNone(signIn.autoApprove)) return yield* consentResponse(request, pending)
    const user = signIn.autoApprove.value
    const approved = yield* approve({ transactionId: pending.transaction.id, subject: user }).pipe(
      Effect.ensuring(Effect.ignore(reservation.release))
    )
    yield* Effect.logInfo("authorization auto-approved").pipe(
      Effect.annotateLogs({ user, client_id: pending.client.clientId, scope: formatScope(approved.grant.scopes) })
    )
    return redirectResponse(redirectLocation(approved.redirect))
  }).pipe(Effect.catchAll(authorizationFailure))

/** The page again after a wrong key: 401, with how many more may be tried. */
const wrongKeyMessage = (attemptsLeft: number): string =>
  attemptsLeft === 0
    ? "That API key is not valid."
    : `That API key is not valid. ${attemptsLeft} ${attemptsLeft === 1 ? "attempt" : "attempts"} left.`

/**
 * Check the API key within the failure limits: the user, or the answer to
 * send instead (the page again, the request refused, or a 429 lockout page).
 */
const signInOrAnswer = (
  request: HttpServerRequest.HttpServerRequest,
  pending: PendingAuthorization,
  form: FormParams
) =>
  Effect.gen(function*() {
    const ticked = grantedScopesFrom(form, pending.transaction.scopes)
    const transactionId = pending.transaction.id
    const clientId = pending.client.clientId
    const apiKey = form["api_key"] ?? ""
    if (apiKey === "") {
      return Either.left(yield* consentResponse(request, pending, { status: 401, error: "Enter your API key to approve.", ticked }))
    }
    const attempt = yield* attemptSignIn(request, transactionId, apiKey)
    switch (attempt._tag) {
      case "SignedIn":
        return Either.right(attempt.user)
      case "WrongKey": {
        yield* Effect.logWarning("sign-in failed").pipe(Effect.annotateLogs({ client_id: clientId, attempts_left: attempt.attemptsLeft }))
        return Either.left(yield* consentResponse(request, pending, { status: 401, error: wrongKeyMessage(attempt.attemptsLeft), ticked }))
      }
      case "Exhausted": {
        const denied = yield* deny(transactionId)
        yield* Effect.logWarning("authorization refused after failed sign-ins").pipe(Effect.annotateLogs({ client_id: clientId }))
        const params = { ...denied.params, error_description: "too many failed sign-in attempts" }
        return Either.left(redirectResponse(redirectLocation({ ...denied, params })))
      }
      case "LockedOut": {
        yield* Effect.logWarning("sign-in locked out").pipe(
          Effect.annotateLogs({
            limit: attempt.limit,
            client_address: attempt.clientAddress,
            client_id: clientId,
            retry_after_s: retryAfterSeconds(attempt.decision)
          })
        )
        const who = attempt.limit === "address" ? "from your network" : "on this server"
        return Either.left(
          waitPage(attempt.decision, "Sign-in paused", `Too many wrong API keys were entered ${who}, so sign-in is paused for a while.`)
        )
      }
    }
  })

/**
 * POST `/authorize`: the consent form (`application/x-www-form-urlencoded`).
 * A foreign `Origin` or a CSRF token that does not match the cookie is 403 and
 * leaves the pending authorization as it was. `action=deny` sends
 * `access_denied` to the client; `action=approve` needs at least one ticked
 * scope when scopes were requested (none: 400 and the page again with a
 * message, the request kept) and a configured API key (wrong: 401 and the
 * page again, the request kept, until its failures run out; a spent address
 * or user budget: 429), and grants the scopes still ticked (`scope_<i>`
 * fields), sending the code, `state` and `iss`.
 */
export const authorizePost = (
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, AuthorizeServices> =>
  Effect.gen(function*() {
    const config = yield* OAuthConfig
    const signIn = yield* SignIn
    const form = yield* readForm(request)
    const transactionId = form["transaction"]
    if (transactionId === undefined || !(yield* checkCsrf(request, form, config.issuer))) return forgedForm()
    if (Option.isSome(yield* Effect.serviceOption(Federation))) {
      return userPage(400, "Sign-in not available", "This server signs users in through its upstream provider, not with API keys.")
    }
    const found = yield* pendingAuthorization(transactionId)
    if (Option.isNone(found)) return unknownTransaction()
    const pending = found.value
    const clientId = pending.client.clientId

    const action = form["action"]
    if (action === "deny") {
      const denied = yield* deny(transactionId)
      yield* Effect.logInfo("authorization denied").pipe(Effect.annotateLogs({ client_id: clientId }))
      return redirectResponse(redirectLocation(denied))
    }
    if (action !== "approve") return userPage(400, "Authorization request refused", "Choose Approve or Deny.")
    if (!signIn.configured) {
      return yield* consentResponse(request, pending, { status: 403, error: "Sign-in is not configured on this server." })
    }

    const grantedScopes = grantedScopesFrom(form, pending.transaction.scopes)
    if (pending.transaction.scopes.length > 0 && grantedScopes.length === 0) {
      // Approving nothing of what was asked is no grant at all: say so, keep the request open.
      return yield* consentResponse(request, pending, {
        status: 400,
        error: "Tick at least one permission to approve, or choose Deny.",
        ticked: []
      })
    }
    const user = yield* signInOrAnswer(request, pending, form)
    if (Either.isLeft(user)) return user.left
    const approved = yield* approve({ transactionId, subject: user.right, grantedScopes })
    yield* Effect.logInfo("authorization approved").pipe(
      Effect.annotateLogs({ user: user.right, client_id: clientId, scope: formatScope(approved.grant.scopes) })
    )
    return redirectResponse(redirectLocation(approved.redirect))
  }).pipe(Effect.catchAll(authorizationFailure))
