import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

const RFC6749_4_1_2_1 = "https://datatracker.ietf.org/doc/html/rfc6749#section-4.1.2.1"
const RFC6749_5_2 = "https://datatracker.ietf.org/doc/html/rfc6749#section-5.2"
const RFC6750_3_1 = "https://datatracker.ietf.org/doc/html/rfc6750#section-3.1"
const RFC7591_3_2_2 = "https://datatracker.ietf.org/doc/html/rfc7591#section-3.2.2"
const RFC8707_2 = "https://datatracker.ietf.org/doc/html/rfc8707#section-2"
const RFC9449_5 = "https://datatracker.ietf.org/doc/html/rfc9449#section-5"
const RFC9449_8 = "https://datatracker.ietf.org/doc/html/rfc9449#section-8"

/** The tag of every OAuth error class, in declaration order. */
export const OAuthErrorTags = [
  "InvalidRequest",
  "InvalidClient",
  "InvalidGrant",
  "UnauthorizedClient",
  "UnsupportedGrantType",
  "InvalidScope",
  "InvalidToken",
  "InsufficientScope",
  "AccessDenied",
  "InvalidTarget",
  "InvalidRedirectUri",
  "InvalidClientMetadata",
  "ServerError",
  "TemporarilyUnavailable",
  "InvalidDpopProof",
  "UseDpopNonce"
] as const

/** The tag of one OAuth error class. */
export type OAuthErrorTag = typeof OAuthErrorTags[number]

/** What the wire knows about one OAuth error: its code, HTTP status and defining RFC section. */
export interface OAuthErrorCode {
  readonly error: string
  readonly status: 400 | 401 | 403 | 500 | 503
  readonly uri: string
}

/**
 * The one table of wire code, HTTP status and RFC reference per error tag.
 * `server_error` and `temporarily_unavailable` are defined in RFC 6749 §4.1.2.1.
 * The DPoP errors (RFC 9449) are 400 at the token endpoint, as listed; at a
 * protected resource the renderer answers them with 401 and a `DPoP`
 * challenge (RFC 9449 §7.1, §9).
 */
export const OAuthErrorCodes = {
  InvalidRequest: { error: "invalid_request", status: 400, uri: RFC6749_5_2 },
  InvalidClient: { error: "invalid_client", status: 401, uri: RFC6749_5_2 },
  InvalidGrant: { error: "invalid_grant", status: 400, uri: RFC6749_5_2 },
  UnauthorizedClient: { error: "unauthorized_client", status: 400, uri: RFC6749_5_2 },
  UnsupportedGrantType: { error: "unsupported_grant_type", status: 400, uri: RFC6749_5_2 },
  InvalidScope: { error: "invalid_scope", status: 400, uri: RFC6749_5_2 },
  InvalidToken: { error: "invalid_token", status: 401, uri: RFC6750_3_1 },
  InsufficientScope: { error: "insufficient_scope", status: 403, uri: RFC6750_3_1 },
  AccessDenied: { error: "access_denied", status: 403, uri: RFC6749_4_1_2_1 },
  InvalidTarget: { error: "invalid_target", status: 400, uri: RFC8707_2 },
  InvalidRedirectUri: { error: "invalid_redirect_uri", status: 400, uri: RFC7591_3_2_2 },
  InvalidClientMetadata: { error: "invalid_client_metadata", status: 400, uri: RFC7591_3_2_2 },
  ServerError: { error: "server_error", status: 500, uri: RFC6749_4_1_2_1 },
  TemporarilyUnavailable: { error: "temporarily_unavailable", status: 503, uri: RFC6749_4_1_2_1 },
  InvalidDpopProof: { error: "invalid_dpop_proof", status: 400, uri: RFC9449_5 },
  UseDpopNonce: { error: "use_dpop_nonce", status: 400, uri: RFC9449_8 }
} as const satisfies Record<OAuthErrorTag, OAuthErrorCode>

/** The optional human-readable text every OAuth error may carry. */
const Described = { description: Schema.optional(Schema.String) }

/** `invalid_request` (400): a parameter is missing, repeated, or malformed. */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()(
  "InvalidRequest",
  Described,
  HttpApiSchema.annotations({ status: OAuthErrorCodes.InvalidRequest.status })
) {
  /** The wire code. */
  get error() {
    return OAuthErrorCodes[this._tag].error
  }
  /** The HTTP status. */
  get status() {
    return OAuthErrorCodes[this._tag].status
  }
}

/** `invalid_client` (401): client authentication failed. */
export class InvalidClient extends Schema.TaggedError<InvalidClient>()(
  "InvalidClient",
  Described,
  HttpApiSchema.annotations({ status: OAuthErrorCodes.InvalidClient.status })
) {
  /** The wire code. */
  get error() {
    return OAuthErrorCodes[this._tag].error
  }
  /** The HTTP status. */
  get status() {
    return OAuthErrorCodes[this._tag].status
  }
}

/** `invalid_grant` (400): the code or refresh token is invalid, expired, revoked or not this client's. */
export class InvalidGrant extends Schema.TaggedError<InvalidGrant>()(
  "InvalidGrant",
  Described,
  HttpApiSchema.annotations({ status: OAuthErrorCodes.InvalidGrant.status })
) {
  /** The wire code. */
  get error() {
    return OAuthErrorCodes[this._tag].error
  }
  /** The HTTP status. */
  get status() {
    return OAuthErrorCodes[this._tag].status
  }
}

/** `unauthorized_client` (400): the client may not use this grant type. */
export class UnauthorizedClient extends Schema.TaggedError<UnauthorizedClient>()(
  "UnauthorizedClient",
  Described,
  HttpApiSchema.annotations({ status: OAuthErrorCodes.UnauthorizedClient.status })
) {
  /** The wire code. */
  get error() {
    return OAuthErrorCodes[this._tag].error
  }
  /** The HTTP status. */
  get status() {
    return OAuthErrorCodes[this._tag].status
  }
}

/** `unsupported_grant_type` (400): the server does not support this grant type. */
export class UnsupportedGrantType extends Schema.TaggedError<UnsupportedGrantType>()(
  "UnsupportedGrantType",
  Described,
  HttpApiSchema.annotations({ status: OAuthErrorCodes.UnsupportedGrantType.status })
) {
  /** The wire code. */
  get error() {
    return OAuthErrorCodes[this._tag].error
  }
  /** The HTTP status. */
  get status() {
    return OAuthErrorCodes[this._tag].status
  }
}

/** `invalid_scope` (400): the requested scope is invalid, unknown, or exceeds the grant. */
export class InvalidScope extends Schema.TaggedError<InvalidScope>()(
  "InvalidScope",
  Described,
  HttpApiSchema.annotations({ status: OAuthErrorCodes.InvalidScope.status })
) {
  /** The wire code. */
  get error() {
    return OAuthErrorCodes[this._tag].error
  }
  /** The HTTP status. */
  get status() {
    return OAuthErrorCodes[this._tag].status
  }
}

/** `invalid_token` (401): the access token is expired, revoked, malformed or for another audience. */
export class InvalidToken extends Schema.TaggedError<InvalidToken>()(
  "InvalidToken",
  Described,
  HttpApiSchema.annotations({ status: OAuthErrorCodes.InvalidToken.status })
) {
  /** The wire code. */
  get error() {
    return OAuthErrorCodes[this._tag].error
  }
  /** The HTTP status. */
  get status() {
    return OAuthErrorCodes[this._tag].status
  }
}

/** `insufficient_scope` (403): the token lacks `scope`, the scopes a step-up authorization must request. */
export class InsufficientScope extends Schema.TaggedError<InsufficientScope>()(
  "InsufficientScope",
  { ...Described, scope: Schema.Array(Schema.String) },
  HttpApiSchema.annotations({ status: OAuthErrorCodes.InsufficientScope.status })
) {
  /** The wire code. */
  get error() {
    return OAuthErrorCodes[this._tag].error
  }
  /** The HTTP status. */
  get status() {
    return OAuthErrorCodes[this._tag].status
  }
}

/** `access_denied` (403): the resource owner or the server refused the request. */
export class AccessDenied extends Schema.TaggedError<AccessDenied>()(
  "AccessDenied",
  Described,
  HttpApiSchema.annotations({ status: OAuthErrorCodes.AccessDenied.status })
) {
  /** The wire code. */
  get error() {
    return OAuthErrorCodes[this._tag].error
  }
  /** The HTTP status. */
  get status() {
    return OAuthErrorCodes[this._tag].status
  }
}

/** `invalid_target` (400, RFC 8707): the requested resource is invalid, unknown or not allowed. */
export class InvalidTarget extends Schema.TaggedError<InvalidTarget>()(
  "InvalidTarget",
  Described,
  HttpApiSchema.annotations({ status: OAuthErrorCodes.InvalidTarget.status })
) {
  /** The wire code. */
  get error() {
    return OAuthErrorCodes[this._tag].error
  }
  /** The HTTP status. */
  get status() {
    return OAuthErrorCodes[this._tag].status
  }
}

/** `invalid_redirect_uri` (400, RFC 7591): a registered redirect URI is not acceptable. */
export class InvalidRedirectUri extends Schema.TaggedError<InvalidRedirectUri>()(
  "InvalidRedirectUri",
  Described,
  HttpApiSchema.annotations({ status: OAuthErrorCodes.InvalidRedirectUri.status })
) {
  /** The wire code. */
  get error() {
    return OAuthErrorCodes[this._tag].error
  }
  /** The HTTP status. */
  get status() {
    return OAuthErrorCodes[this._tag].status
  }
}

/** `invalid_client_metadata` (400, RFC 7591): a client metadata field is invalid. */
export class InvalidClientMetadata extends Schema.TaggedError<InvalidClientMetadata>()(
  "InvalidClientMetadata",
  Described,
  HttpApiSchema.annotations({ status: OAuthErrorCodes.InvalidClientMetadata.status })
) {
  /** The wire code. */
  get error() {
    return OAuthErrorCodes[this._tag].error
  }
  /** The HTTP status. */
  get status() {
    return OAuthErrorCodes[this._tag].status
  }
}

/**
 * `server_error` (500): an unexpected condition. `description` is for logs
 * only: the renderer always sends a generic text. Do not return it through an
 * HttpApi error schema with a detailed description, since that encodes every field.
 */
export class ServerError extends Schema.TaggedError<ServerError>()(
  "ServerError",
  Described,
  HttpApiSchema.annotations({ status: OAuthErrorCodes.ServerError.status })
) {
  /** The wire code. */
  get error() {
    return OAuthErrorCodes[this._tag].error
  }
  /** The HTTP status. */
  get status() {
    return OAuthErrorCodes[this._tag].status
  }
}

/** `temporarily_unavailable` (503): a dependency is down; `retryAfter` is in whole seconds. */
export class TemporarilyUnavailable extends Schema.TaggedError<TemporarilyUnavailable>()(
  "TemporarilyUnavailable",
  { ...Described, retryAfter: Schema.optional(Schema.NonNegativeInt) },
  HttpApiSchema.annotations({ status: OAuthErrorCodes.TemporarilyUnavailable.status })
) {
  /** The wire code. */
  get error() {
    return OAuthErrorCodes[this._tag].error
  }
  /** The HTTP status. */
  get status() {
    return OAuthErrorCodes[this._tag].status
  }
}

/** `invalid_dpop_proof` (RFC 9449 §5, §7.1): the DPoP proof is missing, malformed, stale, replayed or for another request. */
export class InvalidDpopProof extends Schema.TaggedError<InvalidDpopProof>()(
  "InvalidDpopProof",
  Described,
  HttpApiSchema.annotations({ status: OAuthErrorCodes.InvalidDpopProof.status })
) {
  /** The wire code. */
  get error() {
    return OAuthErrorCodes[this._tag].error
  }
  /** The HTTP status (at the token endpoint; a protected resource answers 401). */
  get status() {
    return OAuthErrorCodes[this._tag].status
  }
}

/**
 * `use_dpop_nonce` (RFC 9449 §8, §9): the proof must carry the server's
 * current nonce, sent back in the `DPoP-Nonce` header as `nonce`.
 */
export class UseDpopNonce extends Schema.TaggedError<UseDpopNonce>()(
  "UseDpopNonce",
  { ...Described, nonce: Schema.optional(Schema.String) },
  HttpApiSchema.annotations({ status: OAuthErrorCodes.UseDpopNonce.status })
) {
  /** The wire code. */
  get error() {
    return OAuthErrorCodes[this._tag].error
  }
  /** The HTTP status (at the token endpoint; a protected resource answers 401). */
  get status() {
    return OAuthErrorCodes[this._tag].status
  }
}

/** Every OAuth error class, in the order of `OAuthErrorTags`. */
export const OAuthErrorClasses = [
  InvalidRequest,
  InvalidClient,
  InvalidGrant,
  UnauthorizedClient,
  UnsupportedGrantType,
  InvalidScope,
  InvalidToken,
  InsufficientScope,
  AccessDenied,
  InvalidTarget,
  InvalidRedirectUri,
  InvalidClientMetadata,
  ServerError,
  TemporarilyUnavailable,
  InvalidDpopProof,
  UseDpopNonce
] as const

/** The schema of any OAuth error: decodes `{ _tag, ... }` JSON back into its class. */
export const OAuthError = Schema.Union(...OAuthErrorClasses)

/** Any OAuth error. */
export type OAuthError = typeof OAuthError.Type

const isOAuthErrorSchema = Schema.is(OAuthError)

/** Whether `u` is an instance of one of the OAuth error classes. */
export const isOAuthError = (u: unknown): u is OAuthError => isOAuthErrorSchema(u)
