import { Predicate } from "effect"
import { StoreError } from "../services/StoreError.ts"
import { isOAuthError, type OAuthError, OAuthErrorCodes, ServerError, TemporarilyUnavailable } from "./OAuthError.ts"

/** The only `error_description` a `server_error` ever carries on the wire. */
export const SERVER_ERROR_DESCRIPTION = "The server encountered an unexpected condition."

/** The `error_description` of a `temporarily_unavailable` built from a store outage. */
export const UNAVAILABLE_DESCRIPTION = "The service is temporarily unavailable. Try again later."

/** The `Retry-After` (seconds) sent when a `temporarily_unavailable` names none. */
export const DEFAULT_RETRY_AFTER_SECONDS = 5

/**
 * The challenge of a protected resource (RFC 6750 §3, RFC 9728 §5.1).
 * `tokenPresented` is false when the request carried no access token: the
 * challenge then names no `error` (RFC 6750 §3.1).
 */
export interface BearerChallenge {
  readonly scheme: "Bearer"
  readonly realm?: string
  /** The URL of the protected resource metadata document (RFC 9728). */
  readonly resourceMetadata?: string
  /**
   * The scopes the resource needs, sent as `scope=` on every challenge (MCP
   * 2025-11-25), so a client asks for these instead of every supported scope.
   * An `insufficient_scope` error names its own.
   */
  readonly scope?: ReadonlyArray<string>
  readonly tokenPresented: boolean
  /** The resource also accepts DPoP-bound tokens: a `DPoP` challenge follows the Bearer one (RFC 9449 §7.1, §7.2). */
  readonly dpop?: DpopChallenge
}

/** The `DPoP` challenge of a resource that accepts both schemes (RFC 9449 §7.1). */
export interface DpopChallenge {
  /** The JWS algorithms accepted for proofs, sent as `algs=`. */
  readonly algs: ReadonlyArray<string>
  /**
   * The request used the `DPoP` scheme: its error goes in the DPoP challenge
   * (RFC 9449 §7.2); otherwise in the Bearer one. DPoP proof errors
   * (`invalid_dpop_proof`, `use_dpop_nonce`) always go in the DPoP challenge.
   */
  readonly presented: boolean
}

/** The challenge of a token endpoint whose client authenticated with HTTP Basic (RFC 6749 §5.2). */
export interface BasicChallenge {
  readonly scheme: "Basic"
  readonly realm?: string
}

/** Where the error is rendered; without a challenge no `WWW-Authenticate` is sent. */
export interface RenderContext {
  readonly challenge?: BearerChallenge | BasicChallenge
}

/** An error response ready to write: status, headers and JSON body. */
export interface RenderedError {
  status: number
  headers: Record<string, string>
  body: { error: string; error_description?: string; error_uri?: string }
}

/** Control characters (C0, DEL, C1), runs of them become one space. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]+/g
/** Anything outside printable ASCII, which a header value must not carry. */
const NON_ASCII = /[^\u0020-\u007e]/g

/** One line of printable ASCII: control runs become a space, other characters `?`. */
const oneLine = (value: string): string => value.replace(CONTROL, " ").replace(NON_ASCII, "?").trim()

/** An RFC 9110 quoted-string that cannot break out of its header line. */
const quote = (value: string): string => `"${oneLine(value).replace(/["\\]/g, "\\$&")}"`

/** Whether an error is about the DPoP proof rather than the token (RFC 9449 §7.1). */
const isDpopError = (error: OAuthError): boolean => error._tag === "InvalidDpopProof" || error._tag === "UseDpopNonce"

/**
 * The resource's challenges: `Bearer`, and `DPoP` with `algs` when the
 * resource takes DPoP-bound tokens. Each names the realm, the metadata URL and
 * the scopes; the error (when a token was presented) goes to the scheme the
 * request used, or to `DPoP` for a proof error (RFC 9449 §7.2).
 */
const resourceChallenge = (error: OAuthError, challenge: BearerChallenge): string => {
  const common: Array<string> = []
  if (challenge.realm !== undefined) common.push(`realm=${quote(challenge.realm)}`)
  if (challenge.resourceMetadata !== undefined) {
    common.push(`resource_metadata=${quote(challenge.resourceMetadata)}`)
  }
  const failure: Array<string> = []
  if (challenge.tokenPresented || isDpopError(error)) {
    failure.push(`error=${quote(error.error)}`)
    if (error.description !== undefined) failure.push(`error_description=${quote(error.description)}`)
  }
  const scope = error._tag === "InsufficientScope" ? error.scope : challenge.scope ?? []
  const scopes = scope.length > 0 ? [`scope=${quote(scope.join(" "))}`] : []
  const dpop = challenge.dpop
  const errorOnDpop = dpop !== undefined && (dpop.presented || isDpopError(error))
  const bearerParams = [...common, ...(errorOnDpop ? [] : failure), ...scopes]
  const bearer = bearerParams.length === 0 ? "Bearer" : `Bearer ${bearerParams.join(", ")}`
  if (dpop === undefined) return bearer
  const algs = dpop.algs.length > 0 ? [`algs=${quote(dpop.algs.join(" "))}`] : []
  const dpopParams = [...common, ...(errorOnDpop ? failure : []), ...scopes, ...algs]
  return `${bearer}, ${dpopParams.length === 0 ? "DPoP" : `DPoP ${dpopParams.join(", ")}`}`
}

const basicChallenge = (challenge: BasicChallenge): string =>
  challenge.realm === undefined ? "Basic" : `Basic realm=${quote(challenge.realm)}`

/**
 * Render an OAuth error as an HTTP response (RFC 6749 §5.2, RFC 6750 §3,
 * RFC 9728 §5.1, RFC 9449 §7.1). Pure. A `server_error` always gets a
 * generic description; header values are quoted and stripped of control
 * characters. At a protected resource (a Bearer challenge), the DPoP proof
 * errors answer 401 instead of the token endpoint's 400; `use_dpop_nonce`
 * carries its nonce in `DPoP-Nonce` wherever it is rendered.
 */
export const renderOAuthError = (error: OAuthError, context?: RenderContext): RenderedError => {
  const code = OAuthErrorCodes[error._tag]
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    "Cache-Control": "no-store",
    "Pragma": "no-cache"
  }
  const description = error._tag === "ServerError" ? SERVER_ERROR_DESCRIPTION : error.description
  const body: RenderedError["body"] = description === undefined
    ? { error: code.error, error_uri: code.uri }
    : { error: code.error, error_description: description, error_uri: code.uri }

  const challenge = context?.challenge
  const status = challenge?.scheme === "Bearer" && isDpopError(error) ? 401 : code.status
  if (challenge?.scheme === "Bearer" && (status === 401 || status === 403)) {
    headers["WWW-Authenticate"] = resourceChallenge(error, challenge)
  } else if (challenge?.scheme === "Basic" && error._tag === "InvalidClient") {
    headers["WWW-Authenticate"] = basicChallenge(challenge)
  }
  if (error._tag === "TemporarilyUnavailable") {
    headers["Retry-After"] = String(error.retryAfter ?? DEFAULT_RETRY_AFTER_SECONDS)
  }
  if (error._tag === "UseDpopNonce" && error.nonce !== undefined) headers["DPoP-Nonce"] = oneLine(error.nonce)
  return { status, headers, body }
}

/**
 * The OAuth error a client may see for any failure: an OAuth error passes
 * through, a store outage becomes `temporarily_unavailable` (retry after 5 s),
 * anything else an opaque `server_error`. Log the original with `logDetail`.
 */
export const toOAuthError = (error: unknown): OAuthError => {
  if (isOAuthError(error)) return error
  if (error instanceof StoreError && error.reason === "Unavailable") {
    return new TemporarilyUnavailable({
      description: UNAVAILABLE_DESCRIPTION,
      retryAfter: DEFAULT_RETRY_AFTER_SECONDS
    })
  }
  return new ServerError({ description: SERVER_ERROR_DESCRIPTION })
}

const IDENTIFIER = /^[A-Za-z_$][\w$.]{0,63}$/

/** A class-like name of `u` (`_tag`, else `name` of an Error), only if it looks like an identifier. */
const kindOf = (u: unknown): string | undefined => {
  const name = Predicate.hasProperty(u, "_tag") && Predicate.isString(u._tag)
    ? u._tag
    : u instanceof Error
    ? u.name
    : undefined
  return name !== undefined && IDENTIFIER.test(name) ? name : undefined
}

/**
 * A one-line description of a failure for logs: the tag, and the wire code and
 * description of an OAuth error, or the reason, method and description of a
 * `StoreError` (whose descriptions never contain secrets). Of a cause or an
 * unknown defect only the type name is kept, never its message or data.
 */
export const logDetail = (error: unknown): string => {
  if (isOAuthError(error)) {
    const parts = [error._tag, `error=${error.error}`, `status=${error.status}`]
    if (error.description !== undefined) parts.push(`description=${JSON.stringify(oneLine(error.description))}`)
    return parts.join(" ")
  }
  if (error instanceof StoreError) {
    const parts = [error._tag, `reason=${error.reason}`, `method=${JSON.stringify(oneLine(error.method))}`]
    if (error.description !== undefined) parts.push(`description=${JSON.stringify(oneLine(error.description))}`)
    if (error.cause !== undefined) parts.push(`cause=${kindOf(error.cause) ?? typeof error.cause}`)
    return parts.join(" ")
  }
  return `Defect ${kindOf(error) ?? typeof error}`
}
