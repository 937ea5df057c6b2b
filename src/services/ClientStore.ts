import { Context, type Duration, type Effect, type Option } from "effect"
import type { ClientMetadata, RegisteredClient } from "../schema/client.ts"
import type { StoreError } from "./StoreError.ts"

/** A client to register: its metadata, and its secret in the clear when it has one (stored only hashed). */
export interface NewClient {
  readonly clientId: string
  /** Kept only as its lookup hash. */
  readonly clientSecret?: string
  /** Seconds since the epoch; 0 (the default) means the secret never expires. */
  readonly clientSecretExpiresAt?: number
  readonly metadata: ClientMetadata
  /**
   * Keep the record this long only (a cached Client ID Metadata Document):
   * past it, `get` and `authenticate` no longer find it and the backend
   * removes it. Absent: kept until deleted.
   */
  readonly ttl?: Duration.DurationInput
}

/**
 * OAuth clients: dynamically registered ones (RFC 7591), kept until deleted,
 * and cached Client ID Metadata Documents, kept for their `ttl`. `register`
 * replaces a record with the same `clientId`.
 */
export class ClientStore extends Context.Tag("mcp-oauth-store/ClientStore")<ClientStore, ClientStore.Service>() {}

export declare namespace ClientStore {
  export interface Service {
    readonly register: (client: NewClient) => Effect.Effect<RegisteredClient, StoreError>
    readonly get: (clientId: string) => Effect.Effect<Option.Option<RegisteredClient>, StoreError>
    /**
     * The client when `secret` is its current secret (compared in constant
     * time, expired secrets refused); `None` otherwise.
     */
    readonly authenticate: (clientId: string, secret: string) => Effect.Effect<Option.Option<RegisteredClient>, StoreError>
    readonly delete: (clientId: string) => Effect.Effect<boolean, StoreError>
  }
}
