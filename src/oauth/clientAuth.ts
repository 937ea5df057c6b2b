/** Client authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3, RFC 7591 §2). */
import { Effect, Option, Redacted } from "effect"
import { InvalidClient } from "../errors/OAuthError.ts"
import type { RegisteredClient, TokenEndpointAuthMethod } from "../schema/client.ts"
import { ClientStore } from "../services/ClientStore.ts"
import type { StoreError } from "../services/StoreError.ts"
import { findClient } from "./clientMetadataDocument.ts"
import type { OAuthConfig } from "./config.ts"
import { traced } from "../internal/traced.ts"

/**
 * What the client presented, as the HTTP layer found it: `client_secret_basic`
 * for an `Authorization: Basic` header, `client_secret_post` for a secret in
 * the form, `none` for a bare `client_id`.
 */
export interface ClientCredentials {
  readonly clientId: string
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  readonly method: TokenEndpointAuthMethod
}

const refused = (description: string) => new InvalidClient({ description })

/**
 * The client (registered, or a Client ID Metadata Document, fetched again
 * when its cached copy expired: `findClient`), when its credentials are
 * right: the method it used must be the one it registered; a public client
 * (`none`) must not send a secret; a confidential client's secret is checked
 * by the store in constant time (expired secrets refused).
 */
export const authenticateClient = (
  credentials: ClientCredentials
): Effect.Effect<RegisteredClient, InvalidClient | StoreError, ClientStore | OAuthConfig> =>
  Effect.gen(function*() {
    const store = yield* ClientStore
    const found = yield* findClient(credentials.clientId)
    if (Option.isNone(found)) return yield* Effect.fail(refused("client authentication failed"))
    const registered = found.value.metadata.token_endpoint_auth_method
    if (registered === "none") {
      return credentials.clientSecret === undefined && credentials.method === "none"
        ? found.value
        : yield* Effect.fail(refused("public client must not authenticate with a secret"))
    }
    if (credentials.method !== registered || credentials.clientSecret === undefined) {
      return yield* Effect.fail(refused(`client must authenticate with ${registered}`))
    }
    const authenticated = yield* store.authenticate(credentials.clientId, Redacted.value(credentials.clientSecret))
    return Option.isSome(authenticated) ? authenticated.value : yield* Effect.fail(refused("client authentication failed"))
  }).pipe(traced("OAuth.authenticateClient"))
