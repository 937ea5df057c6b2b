/**
 * CSRF protection of the consent form (double submit, bound to the pending
 * authorization): the page's GET sets a random nonce in an HttpOnly,
 * SameSite=Strict cookie scoped to the authorize path; the form carries
 * `Crypto.hash("csrf:<transaction>:<nonce>")` (an HMAC under the server's
 * lookup-hash key), which only this server can compute and only a page it
 * rendered can know. The POST recomputes it from the cookie and compares in
 * constant time, and refuses an `Origin` other than the server's own.
 */
import { type HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Duration, Effect } from "effect"
import { Crypto } from "../../services/Crypto.ts"
import type { FormParams } from "../body.ts"

/** The cookie holding the nonce. */
export const CSRF_COOKIE = "mcp_consent_csrf"

/** The form field holding the token. */
export const CSRF_FIELD = "csrf"

const NONCE_BYTES = 16
const WELL_FORMED_NONCE = /^[A-Za-z0-9_-]{22,64}$/

/** The path of the authorize endpoint under the public URL (the cookie's `Path`, the form's action). */
export const authorizePath = (publicUrl: string): string => new URL(`${publicUrl}/authorize`).pathname

/** The form token for a pending authorization and a nonce. */
export const csrfToken = (transactionId: string, nonce: string): Effect.Effect<string, never, Crypto> =>
  Effect.flatMap(Crypto, (crypto) => crypto.hash(`csrf:${transactionId}:${nonce}`))

/** The nonce the request's cookie carries, when it has a well-formed one. */
const cookieNonce = (request: HttpServerRequest.HttpServerRequest): string | undefined => {
  const nonce = request.cookies[CSRF_COOKIE]
  return nonce !== undefined && WELL_FORMED_NONCE.test(nonce) ? nonce : undefined
}

/**
 * The nonce and form token for rendering a consent page. A nonce the browser
 * already holds is kept, so two consent pages open in two tabs both work.
 */
export const issueCsrf = (
  request: HttpServerRequest.HttpServerRequest,
  transactionId: string
): Effect.Effect<{ readonly nonce: string; readonly token: string }, never, Crypto> =>
  Effect.gen(function*() {
    const nonce = cookieNonce(request) ?? (yield* (yield* Crypto).randomToken(NONCE_BYTES))
    return { nonce, token: yield* csrfToken(transactionId, nonce) }
  })

/** Set the nonce cookie: HttpOnly, SameSite=Strict, the authorize path, Secure on https, living as long as a transaction. */
export const withCsrfCookie = (
  response: HttpServerResponse.HttpServerResponse,
  nonce: string,
  options: { readonly publicUrl: string; readonly maxAgeMillis: number }
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeSetCookie(response, CSRF_COOKIE, nonce, {
    httpOnly: true,
    sameSite: "strict",
    path: authorizePath(options.publicUrl),
    secure: new URL(options.publicUrl).protocol === "https:",
    maxAge: Duration.millis(Math.max(1000, options.maxAgeMillis))
  })

/**
 * Whether a consent form submission is this server's own: an `Origin`, when
 * sent, is the public URL's origin, and the form's token matches the one
 * computed from the cookie's nonce for the submitted transaction.
 */
export const checkCsrf = (
  request: HttpServerRequest.HttpServerRequest,
  form: FormParams,
  publicUrl: string
): Effect.Effect<boolean, never, Crypto> =>
  Effect.gen(function*() {
    const origin = request.headers["origin"]
    if (origin !== undefined && origin !== new URL(publicUrl).origin) return false
    const nonce = cookieNonce(request)
    const presented = form[CSRF_FIELD]
    const transactionId = form["transaction"]
    if (nonce === undefined || presented === undefined || transactionId === undefined) return false
    const expected = yield* csrfToken(transactionId, nonce)
    return (yield* Crypto).timingSafeEqual(expected, presented)
  })
