import { Schema } from "effect"
import { CodeChallengeMethod, EpochMillis, Scopes } from "./common.ts"

/**
 * An authorization code's record. The code itself is a bearer secret: the
 * store keeps only its lookup hash.
 */
export const AuthorizationCode = Schema.Struct({
  grantId: Schema.String,
  clientId: Schema.String,
  subject: Schema.String,
  redirectUri: Schema.String,
  codeChallenge: Schema.String,
  codeChallengeMethod: CodeChallengeMethod,
  scopes: Scopes,
  resource: Schema.optional(Schema.String),
  /** RFC 9449 §10: the code is exchanged only with a DPoP proof of the key with this thumbprint. */
  dpopJkt: Schema.optional(Schema.String),
  /** The pending authorization whose provider tokens move to the grant on exchange. */
  authorizationId: Schema.optional(Schema.String),
  createdAt: EpochMillis,
  expiresAt: EpochMillis
})
export type AuthorizationCode = typeof AuthorizationCode.Type

/** What consuming a code found. */
export type CodeConsumption =
  | { readonly _tag: "Consumed"; readonly code: AuthorizationCode }
  /** The code was used before: the grant it belonged to should be revoked (RFC 6749 §4.1.2). */
  | { readonly _tag: "Replayed"; readonly grantId: string }
  | { readonly _tag: "NotFound" }
