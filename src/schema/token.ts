import { Schema } from "effect"
import { EpochMillis, Scopes } from "./common.ts"

/**
 * The record behind an opaque resource-server access token (seed 000's RS
 * token mapping): the token maps to its grant, and through the grant id to the
 * provider tokens kept in the `ProviderTokenStore`.
 */
export const AccessTokenRecord = Schema.Struct({
  grantId: Schema.String,
  clientId: Schema.String,
  subject: Schema.String,
  scopes: Scopes,
  resource: Schema.optional(Schema.String),
  /** The DPoP key the token is bound to (RFC 9449 §6: its JWK SHA-256 thumbprint); absent for a bearer token. */
  jkt: Schema.optional(Schema.String),
  createdAt: EpochMillis,
  expiresAt: EpochMillis
})
export type AccessTokenRecord = typeof AccessTokenRecord.Type

/**
 * A refresh token's record. Every refresh token of a grant belongs to one
 * family (the grant id) and carries its generation: rotation issues
 * generation n + 1 and marks generation n as rotated.
 */
export const RefreshTokenRecord = Schema.Struct({
  grantId: Schema.String,
  familyId: Schema.String,
  generation: Schema.Number.pipe(Schema.int(), Schema.nonNegative()),
  clientId: Schema.String,
  subject: Schema.String,
  scopes: Scopes,
  resource: Schema.optional(Schema.String),
  /**
   * The DPoP key the chain is bound to (RFC 9449 §5: a public client's refresh
   * token; its JWK SHA-256 thumbprint): every refresh must prove possession of
   * it. Successors inherit it. Absent: not bound.
   */
  jkt: Schema.optional(Schema.String),
  createdAt: EpochMillis,
  expiresAt: EpochMillis,
  /** No successor outlives this instant: the chain's absolute lifetime. */
  absoluteExpiresAt: EpochMillis,
  /** When this token was exchanged for its successor. */
  rotatedAt: Schema.optional(EpochMillis)
})
export type RefreshTokenRecord = typeof RefreshTokenRecord.Type

/**
 * What a rotation hands back to the caller: the successor refresh token and
 * the access token issued with it, both in the clear. Stored only sealed, for
 * the grace window, so a client whose response was lost can retry.
 */
export const IssuedPair = Schema.Struct({
  refreshToken: Schema.Redacted(Schema.String),
  accessToken: Schema.Redacted(Schema.String),
  /** The DPoP key the access token is bound to, so a retry is answered only for the same key. */
  jkt: Schema.optional(Schema.String)
})
export type IssuedPair = typeof IssuedPair.Type

/** What presenting a refresh token for rotation found. */
export type Rotation =
  | { readonly _tag: "Rotated"; readonly previous: RefreshTokenRecord; readonly current: RefreshTokenRecord }
  /** The immediate predecessor, replayed within the grace window: the same successor again. */
  | { readonly _tag: "GraceReplay"; readonly current: RefreshTokenRecord; readonly pair: IssuedPair }
  /** Any other reuse of a rotated token: the whole grant has been revoked. */
  | { readonly _tag: "ReuseDetected"; readonly grantId: string }
  | { readonly _tag: "NotFound" }

/** A grant: one user's consent to one client, the root of everything issued under it. */
export const Grant = Schema.Struct({
  id: Schema.String,
  clientId: Schema.String,
  subject: Schema.String,
  scopes: Scopes,
  resource: Schema.optional(Schema.String),
  createdAt: EpochMillis,
  expiresAt: EpochMillis
})
export type Grant = typeof Grant.Type
