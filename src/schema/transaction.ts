import { Schema } from "effect"
import { CodeChallengeMethod, EpochMillis, Scopes } from "./common.ts"

/**
 * A pending authorization: everything `/authorize` learned, kept until the
 * user has consented (or the upstream provider called back) and then taken
 * exactly once.
 */
export const Transaction = Schema.Struct({
  id: Schema.String,
  clientId: Schema.String,
  redirectUri: Schema.String,
  codeChallenge: Schema.String,
  codeChallengeMethod: CodeChallengeMethod,
  scopes: Scopes,
  resource: Schema.optional(Schema.String),
  state: Schema.optional(Schema.String),
  /** RFC 9449 §10 `dpop_jkt`: the thumbprint of the DPoP key the code must be exchanged with. */
  dpopJkt: Schema.optional(Schema.String),
  /** Set once the user is known (local sign-in, or the upstream callback). */
  subject: Schema.optional(Schema.String),
  /** Upstream federation: the state and PKCE verifier of our request to the provider. */
  upstream: Schema.optional(Schema.Struct({
    state: Schema.String,
    codeVerifier: Schema.Redacted(Schema.String)
  })),
  createdAt: EpochMillis,
  expiresAt: EpochMillis
})
export type Transaction = typeof Transaction.Type
