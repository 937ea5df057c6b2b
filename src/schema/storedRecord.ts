import { Schema } from "effect"
import { RegisteredClient } from "./client.ts"
import { AuthorizationCode } from "./code.ts"
import { EpochMillis } from "./common.ts"
import { Session } from "./session.ts"
import { AccessTokenRecord, Grant, RefreshTokenRecord } from "./token.ts"

/**
 * One record as a backend keeps it, in a form every backend reads and writes:
 * bearer secrets only as their lookup hashes, secret values only as `Crypto`
 * envelopes. Envelopes are bound to the record keys of `src/internal/keys.ts`,
 * which are the same on every backend, so a sealed value moves between
 * backends unchanged. What `StoreMaintenance` lists, re-seals and imports.
 */

/** A pending authorization: sealed, since it may carry the upstream PKCE verifier. */
export const StoredTransaction = Schema.TaggedStruct("Transaction", {
  id: Schema.String,
  /** The `Transaction` as JSON, sealed under `Keys.transaction(id)`. */
  envelope: Schema.String,
  expiresAt: EpochMillis
})

/** An authorization code under its lookup hash; a consumed one stays (as a tombstone) so a replay is detected. */
export const StoredCode = Schema.TaggedStruct("Code", {
  hash: Schema.String,
  record: AuthorizationCode,
  consumed: Schema.Boolean
})

/** The record of an opaque access token, under the token's lookup hash. */
export const StoredAccessToken = Schema.TaggedStruct("AccessToken", {
  hash: Schema.String,
  record: AccessTokenRecord
})

/** A refresh token under its lookup hash; once rotated, its successor's hash and the pair handed out, sealed. */
export const StoredRefreshToken = Schema.TaggedStruct("RefreshToken", {
  hash: Schema.String,
  record: RefreshTokenRecord,
  successorHash: Schema.optional(Schema.String),
  /** The successor `IssuedPair`, sealed under `Keys.refreshSuccessor(hash)`. */
  sealedSuccessor: Schema.optional(Schema.String)
})

/** A grant (no secret in it). */
export const StoredGrant = Schema.TaggedStruct("Grant", {
  record: Grant
})

/** Upstream provider tokens, sealed under `Keys.providerTokens(authorizationId, providerId)`. */
export const StoredProviderTokens = Schema.TaggedStruct("ProviderTokens", {
  authorizationId: Schema.String,
  providerId: Schema.String,
  envelope: Schema.String,
  expiresAt: EpochMillis
})

/** An MCP session (its API key only as a hash). */
export const StoredSession = Schema.TaggedStruct("Session", {
  session: Session
})

/** A registered client (its secret only as a hash). */
export const StoredClient = Schema.TaggedStruct("Client", {
  client: RegisteredClient
})

/** The signing key set, sealed under `Keys.signingKeys`, with its compare-and-set version. */
export const StoredSigningKeys = Schema.TaggedStruct("SigningKeys", {
  version: Schema.Number.pipe(Schema.int(), Schema.positive()),
  envelope: Schema.String
})

/** Any stored record, as `StoreMaintenance` lists, re-seals and imports them. */
export const StoredRecord = Schema.Union(
  StoredTransaction,
  StoredCode,
  StoredAccessToken,
  StoredRefreshToken,
  StoredGrant,
  StoredProviderTokens,
  StoredSession,
  StoredClient,
  StoredSigningKeys
)
export type StoredRecord = typeof StoredRecord.Type

/** The kinds of stored records, in the order they are listed and counted. */
export const RECORD_KINDS = [
  "Transaction",
  "Code",
  "AccessToken",
  "RefreshToken",
  "Grant",
  "ProviderTokens",
  "Session",
  "Client",
  "SigningKeys"
] as const satisfies ReadonlyArray<StoredRecord["_tag"]>
/** One kind of stored record (its `_tag`). */
export type RecordKind = typeof RECORD_KINDS[number]

/** How many live records of each kind a backend holds. */
export type RecordCounts = { readonly [K in RecordKind]: number }

/**
 * A sealed value inside a record, named by where it lives, for a conditional
 * re-seal. Pending authorizations are sealed only where the backend stores
 * them one by one (SQLite, Redis); the file backend seals them inside its
 * snapshot.
 */
export type SealedRef =
  | { readonly _tag: "Transaction"; readonly id: string }
  | { readonly _tag: "RefreshSuccessor"; readonly hash: string }
  | { readonly _tag: "ProviderTokens"; readonly authorizationId: string; readonly providerId: string }
  | { readonly _tag: "SigningKeys" }

/** Replace the sealed value at `ref` by `next`, only if it still holds `expected`. */
export interface Reseal {
  readonly ref: SealedRef
  readonly expected: string
  readonly next: string
}
