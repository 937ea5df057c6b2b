import { Schema } from "effect"
import { EpochMillis } from "./common.ts"

/** Seconds since the Unix epoch, as RFC 7591 dates are. */
export const EpochSeconds = Schema.Number.pipe(Schema.int(), Schema.nonNegative())

/** How a client authenticates at the token endpoint (RFC 7591 §2). */
export const TokenEndpointAuthMethod = Schema.Literal("none", "client_secret_post", "client_secret_basic")
export type TokenEndpointAuthMethod = typeof TokenEndpointAuthMethod.Type

/** Client metadata as RFC 7591 §2 names it on the wire. */
export const ClientMetadata = Schema.Struct({
  redirect_uris: Schema.Array(Schema.String),
  token_endpoint_auth_method: TokenEndpointAuthMethod,
  grant_types: Schema.Array(Schema.String),
  response_types: Schema.Array(Schema.String),
  client_name: Schema.optional(Schema.String),
  client_uri: Schema.optional(Schema.String),
  logo_uri: Schema.optional(Schema.String),
  scope: Schema.optional(Schema.String),
  contacts: Schema.optional(Schema.Array(Schema.String)),
  tos_uri: Schema.optional(Schema.String),
  policy_uri: Schema.optional(Schema.String),
  jwks_uri: Schema.optional(Schema.String),
  software_id: Schema.optional(Schema.String),
  software_version: Schema.optional(Schema.String),
  /** RFC 9449 §5.2: the client always uses DPoP, so a token request without a proof is refused. */
  dpop_bound_access_tokens: Schema.optional(Schema.Boolean)
})
export type ClientMetadata = typeof ClientMetadata.Type

/** A dynamically registered client. Its secret, when it has one, is kept only as a lookup hash. */
export const RegisteredClient = Schema.Struct({
  clientId: Schema.String,
  clientSecretHash: Schema.optional(Schema.String),
  clientIdIssuedAt: EpochSeconds,
  /** 0 means the secret never expires (RFC 7591 §3.2.1). */
  clientSecretExpiresAt: EpochSeconds,
  metadata: ClientMetadata,
  /**
   * When the record stops being served (milliseconds since the epoch): a
   * cached copy of a Client ID Metadata Document. Absent: kept until deleted
   * (a registered client).
   */
  expiresAt: Schema.optional(EpochMillis)
})
export type RegisteredClient = typeof RegisteredClient.Type
