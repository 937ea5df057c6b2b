import { Schema } from "effect"
import { EpochMillis, Scopes } from "./common.ts"

/**
 * Upstream provider tokens for one (authorization, provider) pair, as seed
 * 002's `OrchestratedTokenStore` keeps them. The access and refresh expiries
 * are separate: the record lives as long as its refresh token.
 */
export const ProviderTokens = Schema.Struct({
  accessToken: Schema.Redacted(Schema.String),
  refreshToken: Schema.optional(Schema.Redacted(Schema.String)),
  tokenType: Schema.optional(Schema.String),
  accessExpiresAt: Schema.optional(EpochMillis),
  refreshExpiresAt: Schema.optional(EpochMillis),
  scopes: Schema.optional(Scopes),
  /** Claims of the provider's ID token, when it sent one (OIDC). */
  idTokenClaims: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
})
export type ProviderTokens = typeof ProviderTokens.Type

/** The JSON form of `ProviderTokens`: what gets encrypted at rest. */
export const ProviderTokensJson = Schema.parseJson(ProviderTokens)
