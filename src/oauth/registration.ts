/** Dynamic client registration (RFC 7591): validate the metadata, generate the credentials, store the client. */
import { Clock, Effect, Option, Redacted, Schema } from "effect"
import { InvalidClientMetadata, InvalidRedirectUri } from "../errors/OAuthError.ts"
import { ClientMetadata, type RegisteredClient, TokenEndpointAuthMethod } from "../schema/client.ts"
import { ClientStore } from "../services/ClientStore.ts"
import { Crypto } from "../services/Crypto.ts"
import type { StoreError } from "../services/StoreError.ts"
import { type ClientMetadataLimits, DEFAULT_CLIENT_METADATA_LIMITS, OAuthConfig } from "./config.ts"
import { redirectUriProblem } from "./redirectUris.ts"
import { formatScope, parseScope } from "./scopes.ts"
import { traced } from "../internal/traced.ts"

/** The grant types a client may register: the authorization-code flow and refresh. */
export const SUPPORTED_GRANT_TYPES = ["authorization_code", "refresh_token"] as const

/**
 * The grant types of a client that registers without `grant_types`: the
 * code flow and refresh. RFC 7591 §2 defaults to `authorization_code` alone,
 * but most MCP clients leave the member out and still expect to refresh;
 * RFC 7591 §3.2.1 lets the server substitute values, and the registration
 * response (or the metadata document's cached record) says what was
 * registered. A client that lists `grant_types` gets exactly those.
 */
export const DEFAULT_GRANT_TYPES: ReadonlyArray<string> = SUPPORTED_GRANT_TYPES

/** The registration request as it arrives (RFC 7591 §2): every member optional, types checked. */
const RegistrationRequest = Schema.Struct({
  ...ClientMetadata.omit("redirect_uris", "token_endpoint_auth_method", "grant_types", "response_types").fields,
  redirect_uris: Schema.optional(Schema.Array(Schema.String)),
  token_endpoint_auth_method: Schema.optional(Schema.String),
  grant_types: Schema.optional(Schema.Array(Schema.String)),
  response_types: Schema.optional(Schema.Array(Schema.String))
})

const decodeRequest = Schema.decodeUnknown(RegistrationRequest, { onExcessProperty: "ignore" })
const isAuthMethod = Schema.is(TokenEndpointAuthMethod)

/** A registered client and, for a confidential client, its secret: in the clear only here, once. */
export interface ClientRegistration {
  readonly client: RegisteredClient
  readonly clientSecret: Option.Option<Redacted.Redacted<string>>
}

const badMetadata = (description: string) => new InvalidClientMetadata({ description })

const URI_MEMBERS = ["client_uri", "logo_uri", "tos_uri", "policy_uri", "jwks_uri"] as const
const TEXT_MEMBERS = ["client_name", "software_id", "software_version"] as const

/** How metadata is validated beyond RFC 7591's rules. */
export interface ClientMetadataRules {
  /**
   * Only a public client (`token_endpoint_auth_method: none`, the default
   * then): a Client ID Metadata Document, which cannot carry a secret.
   */
  readonly publicOnly?: boolean
  /** How long members and lists may be (default `DEFAULT_CLIENT_METADATA_LIMITS`). */
  readonly limits?: ClientMetadataLimits
}

/** The grant and response types a client may list at most, and their longest value (each is one of very few). */
const MAX_TYPE_ENTRIES = 10
const MAX_TYPE_LENGTH = 64

/** The first member of a decoded request over its bound, described; `undefined` when all are within. */
const overLimit = (request: typeof RegistrationRequest.Type, limits: ClientMetadataLimits): string | undefined => {
  const tooLong = (name: string, value: string | undefined, max: number) =>
    value !== undefined && value.length > max ? `${name} is longer than ${max} characters` : undefined
  const tooMany = (name: string, values: ReadonlyArray<unknown> | undefined, max: number) =>
    values !== undefined && values.length > max ? `${name} has more than ${max} entries` : undefined
  return tooMany("redirect_uris", request.redirect_uris, limits.maxRedirectUris) ??
    tooMany("contacts", request.contacts, limits.maxContacts) ??
    tooMany("grant_types", request.grant_types, MAX_TYPE_ENTRIES) ??
    tooMany("response_types", request.response_types, MAX_TYPE_ENTRIES) ??
    (request.redirect_uris ?? []).map((uri) => tooLong("a redirect URI", uri, limits.maxUriLength)).find((p) => p !== undefined) ??
    URI_MEMBERS.map((member) => tooLong(member, request[member], limits.maxUriLength)).find((p) => p !== undefined) ??
    TEXT_MEMBERS.map((member) => tooLong(member, request[member], limits.maxTextLength)).find((p) => p !== undefined) ??
    (request.contacts ?? []).map((contact) => tooLong("a contact", contact, limits.maxTextLength)).find((p) => p !== undefined) ??
    tooLong("scope", request.scope, limits.maxScopeLength) ??
    [request.token_endpoint_auth_method, ...request.grant_types ?? [], ...request.response_types ?? []]
      .map((value) => tooLong("a type value", value, MAX_TYPE_LENGTH)).find((p) => p !== undefined)
}

/**
 * Validate RFC 7591 client metadata: redirect URIs (https, or http on a
 * loopback host; for a public client also private-use schemes, RFC 8252
 * §7.1), grant types (default `DEFAULT_GRANT_TYPES`) and response types, the
 * token endpoint auth method (`none`, `client_secret_post`,
 * `client_secret_basic`; default `client_secret_basic` as RFC 7591 says, or
 * `none` under `publicOnly`), scopes the server supports, and URL members;
 * first of all, every member within `rules.limits` (`invalid_client_metadata`
 * naming the member otherwise).
 */
export const validateClientMetadata = (
  input: unknown,
  scopesSupported: ReadonlyArray<string> | undefined,
  rules: ClientMetadataRules = {}
): Effect.Effect<ClientMetadata, InvalidClientMetadata | InvalidRedirectUri> =>
  Effect.gen(function*() {
    const request = yield* decodeRequest(input).pipe(
      Effect.mapError(() => badMetadata("client metadata members have the wrong types"))
    )
    const excess = overLimit(request, rules.limits ?? DEFAULT_CLIENT_METADATA_LIMITS)
    if (excess !== undefined) return yield* Effect.fail(badMetadata(excess))
    const method: string = request.token_endpoint_auth_method ?? (rules.publicOnly === true ? "none" : "client_secret_basic")
    if (!isAuthMethod(method)) {
      return yield* Effect.fail(badMetadata("token_endpoint_auth_method must be none, client_secret_post or client_secret_basic"))
    }
    if (rules.publicOnly === true && method !== "none") {
      return yield* Effect.fail(badMetadata("token_endpoint_auth_method must be none: this client cannot hold a secret"))
    }

    const redirectUris = request.redirect_uris ?? []
    if (redirectUris.length === 0) return yield* Effect.fail(new InvalidRedirectUri({ description: "redirect_uris is required" }))
    for (const uri of redirectUris) {
      const problem = redirectUriProblem(uri, method === "none" ? "public" : "confidential")
      if (problem !== undefined) return yield* Effect.fail(new InvalidRedirectUri({ description: `redirect URI ${problem}` }))
    }

    const grantTypes = request.grant_types ?? DEFAULT_GRANT_TYPES
    const supported: ReadonlyArray<string> = SUPPORTED_GRANT_TYPES
    const unsupported = grantTypes.find((g) => !supported.includes(g))
    if (unsupported !== undefined) return yield* Effect.fail(badMetadata(`unsupported grant type: ${unsupported}`))
    if (!grantTypes.includes("authorization_code")) return yield* Effect.fail(badMetadata("grant_types must include authorization_code"))
    const responseTypes = request.response_types ?? ["code"]
    if (responseTypes.length !== 1 || responseTypes[0] !== "code") {
      return yield* Effect.fail(badMetadata("response_types must be [\"code\"]"))
    }

    let scope: string | undefined
    if (request.scope !== undefined) {
      const scopes = parseScope(request.scope)
      if (scopes === undefined) return yield* Effect.fail(badMetadata("scope is malformed"))
      const unknown = scopesSupported === undefined ? undefined : scopes.find((s) => !scopesSupported.includes(s))
      if (unknown !== undefined) return yield* Effect.fail(badMetadata(`unsupported scope: ${unknown}`))
      scope = formatScope(scopes)
    }
    for (const member of URI_MEMBERS) {
      const value = request[member]
      if (value !== undefined && !(URL.canParse(value) && /^https?:$/.test(new URL(value).protocol))) {
        return yield* Effect.fail(badMetadata(`${member} is not an http(s) URL`))
      }
    }

    // Only the members RFC 7591 defines are kept; unknown ones were dropped when decoding.
    const { grant_types: _g, redirect_uris: _r, response_types: _t, scope: _s, token_endpoint_auth_method: _m, ...described } =
      request
    return {
      ...described,
      ...(scope === undefined ? {} : { scope }),
      redirect_uris: [...redirectUris],
      token_endpoint_auth_method: method,
      grant_types: [...new Set(grantTypes)],
      response_types: ["code"]
    }
  })

/**
 * Register a client: validate its metadata, generate a `client_id` and (unless
 * it is a public client, `none`) a secret, and store it with the secret's hash.
 */
export const registerClient = (
  metadata: unknown
): Effect.Effect<
  ClientRegistration,
  InvalidClientMetadata | InvalidRedirectUri | StoreError,
  ClientStore | Crypto | OAuthConfig
> =>
  Effect.gen(function*() {
    const config = yield* OAuthConfig
    const crypto = yield* Crypto
    const validated = yield* validateClientMetadata(metadata, config.scopesSupported, { limits: config.clientMetadataLimits })
    const clientId = yield* crypto.randomToken(16)
    const secret = validated.token_endpoint_auth_method === "none" ? undefined : yield* crypto.randomToken(32)
    const now = yield* Clock.currentTimeMillis
    const client = yield* (yield* ClientStore).register({
      clientId,
      metadata: validated,
      ...(secret === undefined ? {} : { clientSecret: secret }),
      ...(secret === undefined || config.clientSecretTtl === 0
        ? {}
        : { clientSecretExpiresAt: Math.floor((now + config.clientSecretTtl) / 1000) })
    })
    return { client, clientSecret: Option.map(Option.fromNullable(secret), Redacted.make) }
  }).pipe(traced("OAuth.registerClient"))

/** The RFC 7591 §3.2.1 response body: the metadata as registered, the id, and the secret once. */
export const registrationResponse = (registration: ClientRegistration): Record<string, unknown> => ({
  ...registration.client.metadata,
  client_id: registration.client.clientId,
  client_id_issued_at: registration.client.clientIdIssuedAt,
  ...Option.match(registration.clientSecret, {
    onNone: () => ({}),
    onSome: (secret) => ({
      client_secret: Redacted.value(secret),
      client_secret_expires_at: registration.client.clientSecretExpiresAt
    })
  })
})
