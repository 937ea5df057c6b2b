import { Context, type Effect, type Option } from "effect"
import type { ProviderTokens } from "../schema/providerTokens.ts"
import type { StoreError } from "./StoreError.ts"

/**
 * Upstream provider tokens per (authorization, provider): seed 002's
 * `OrchestratedTokenStore`. Tokens are encrypted at rest, each ciphertext bound
 * to its (authorization, provider) key.
 *
 * A record lives as long as the token that keeps it useful: its refresh token
 * when it has one, otherwise its access token. Storing tokens without a
 * refresh token over a record that has one keeps the old refresh token (an
 * upstream refresh that returns none).
 */
export class ProviderTokenStore extends Context.Tag("mcp-oauth-store/ProviderTokenStore")<
  ProviderTokenStore,
  ProviderTokenStore.Service
>() {}

export declare namespace ProviderTokenStore {
  export interface Service {
    readonly storeTokens: (authorizationId: string, providerId: string, tokens: ProviderTokens) => Effect.Effect<void, StoreError>
    readonly getTokens: (authorizationId: string, providerId: string) => Effect.Effect<Option.Option<ProviderTokens>, StoreError>
    /** `true` when there was something to delete. */
    readonly deleteTokens: (authorizationId: string, providerId: string) => Effect.Effect<boolean, StoreError>
    readonly getProviderIds: (authorizationId: string) => Effect.Effect<ReadonlyArray<string>, StoreError>
    /** Move every provider's tokens from one authorization id to another (pending authorization -> grant). */
    readonly migrateTokens: (fromAuthorizationId: string, toAuthorizationId: string) => Effect.Effect<void, StoreError>
    /** Delete every provider's tokens of an authorization (grant revocation). */
    readonly deleteAll: (authorizationId: string) => Effect.Effect<void, StoreError>
  }
}
