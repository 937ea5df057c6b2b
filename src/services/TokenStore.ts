import { Context, type Duration, type Effect, type Option } from "effect"
import type { AuthorizationCode, CodeConsumption } from "../schema/code.ts"
import type { AccessTokenRecord, Grant, IssuedPair, RefreshTokenRecord, Rotation } from "../schema/token.ts"
import type { Transaction } from "../schema/transaction.ts"
import type { StoreError } from "./StoreError.ts"

/** A record to create: the store stamps `createdAt` and `expiresAt` (now + `ttl`, or its default). */
export type NewRecord<A> = Omit<A, "createdAt" | "expiresAt"> & { readonly ttl?: Duration.DurationInput }

/** The first refresh token of a grant, to save: the store sets its family, generation and lifetimes. */
export type NewRefreshToken =
  & Omit<RefreshTokenRecord, "createdAt" | "expiresAt" | "familyId" | "generation" | "rotatedAt" | "absoluteExpiresAt">
  & {
    readonly ttl?: Duration.DurationInput
    /** The chain's end; defaults to the grant's expiry, or the refresh TTL when there is no grant. */
    readonly absoluteExpiresAt?: number
  }

/**
 * The state of the OAuth flows: pending authorizations, authorization codes,
 * opaque access-token records, refresh tokens and grants.
 *
 * Codes, access tokens and refresh tokens are bearer secrets: methods take them
 * in the clear and the store keeps only their `Crypto` lookup hashes.
 */
export class TokenStore extends Context.Tag("mcp-oauth-store/TokenStore")<TokenStore, TokenStore.Service>() {}

export declare namespace TokenStore {
  export interface Service {
    /** Save a pending authorization (default TTL 10 minutes). */
    readonly saveTransaction: (transaction: NewRecord<Transaction>) => Effect.Effect<Transaction, StoreError>
    /** Read a pending authorization without consuming it. */
    readonly getTransaction: (id: string) => Effect.Effect<Option.Option<Transaction>, StoreError>
    /** Remove and return a pending authorization: atomic, at most one caller ever gets it. */
    readonly takeTransaction: (id: string) => Effect.Effect<Option.Option<Transaction>, StoreError>

    /** Save an authorization code under its hash (default TTL 60 s). */
    readonly saveCode: (code: string, record: NewRecord<AuthorizationCode>) => Effect.Effect<AuthorizationCode, StoreError>
    /**
     * Consume a code: atomic, exactly one caller gets `Consumed`. A later use
     * of the same code (until it would have expired) is `Replayed` with its grant.
     */
    readonly consumeCode: (code: string) => Effect.Effect<CodeConsumption, StoreError>

    /** Save the record behind an opaque access token (default TTL 7 days). */
    readonly saveAccessToken: (token: string, record: NewRecord<AccessTokenRecord>) => Effect.Effect<AccessTokenRecord, StoreError>
    /** Look an opaque access token up by its hash. */
    readonly getAccessToken: (token: string) => Effect.Effect<Option.Option<AccessTokenRecord>, StoreError>
    /** Remove one access-token record; `true` when it existed. */
    readonly revokeAccessToken: (token: string) => Effect.Effect<boolean, StoreError>

    /** Save the first refresh token of a grant (generation 0; default TTL 30 days). */
    readonly saveRefreshToken: (token: string, record: NewRefreshToken) => Effect.Effect<RefreshTokenRecord, StoreError>
    /** Look a refresh token up by its hash; rotated tokens are returned with `rotatedAt`. */
    readonly getRefreshToken: (token: string) => Effect.Effect<Option.Option<RefreshTokenRecord>, StoreError>
    /**
     * Exchange `presented` for `successor`, atomically. Exactly one concurrent
     * caller rotates; the immediate predecessor presented again within the
     * grace window gets the first caller's pair back; any other reuse of a
     * rotated token revokes the whole grant.
     */
    readonly rotateRefreshToken: (presented: string, successor: IssuedPair) => Effect.Effect<Rotation, StoreError>

    /** Save a grant (default TTL 90 days: the absolute lifetime of its refresh chain). */
    readonly saveGrant: (grant: NewRecord<Grant>) => Effect.Effect<Grant, StoreError>
    readonly getGrant: (id: string) => Effect.Effect<Option.Option<Grant>, StoreError>
    /** Remove the grant and every code, token and provider token issued under it; `true` when it existed. */
    readonly revokeGrant: (id: string) => Effect.Effect<boolean, StoreError>
  }
}
