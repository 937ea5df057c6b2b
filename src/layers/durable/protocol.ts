/**
 * What the Durable Object backend's layer (in the Worker) and its object
 * (`StoreObject`) say to each other over JS RPC on the object's stub. Types
 * and one guard only: both sides import this module.
 *
 * Everything that crosses is plain, structured-clonable data: lookup hashes,
 * `Crypto` envelopes, record bodies as JSON text (records without secrets),
 * epoch milliseconds. Never a bearer secret or a key: the layer hashes and
 * seals before it calls, so the object (and its storage) sees neither.
 */
import type { Gcra } from "../../internal/rateLimit.ts"
import type { SessionRow } from "../../internal/sessionRow.ts"
import type { EvictionReason } from "../../schema/session.ts"
import type { RateLimitDecision } from "../../services/RateLimiter.ts"
import type { StoreErrorReason } from "../../services/StoreError.ts"
import type { NewRefreshToken } from "../../services/TokenStore.ts"

/**
 * Sent with every call. The object has no clock of its own for expiry: every
 * decision of a call is taken at the caller's `now` (Effect's `Clock` in the
 * layer, so `TestClock` drives it), and the sweep settings travel with it.
 */
export interface CallContext {
  /** The caller's time, epoch milliseconds. */
  readonly now: number
  /** Expired rows are swept at most this often (caller time), and an idle object's alarm fires this far ahead. */
  readonly sweepEvery: number
  /** The refresh grace window: sealed successor pairs older than this are cleared by sweeps. */
  readonly graceWindow: number
}

/** A failure the object reports (it never throws across RPC for these). */
export interface Failure {
  readonly _tag: "Failure"
  readonly reason: StoreErrorReason
  /** No value, no secret: a SQLite result code or a fixed phrase. */
  readonly description: string
}

/** What a call answers: its result, or the failure it met. */
export type Reply<A> = A | Failure

export const isFailure = (reply: unknown): reply is Failure =>
  typeof reply === "object" && reply !== null && "_tag" in reply && reply._tag === "Failure"

/** What consuming a code found; `body` is the code's record as JSON. */
export type ConsumeReply =
  | { readonly _tag: "Consumed"; readonly body: string }
  | { readonly _tag: "Replayed"; readonly grantId: string }
  | { readonly _tag: "NotFound" }

/** A refresh token's record as JSON, and when it was rotated (null: it is the head of its chain). */
export interface RefreshRow {
  readonly body: string
  readonly rotatedAt: number | null
}

/** A refresh token to save: the record fields the caller gives (its TTL resolved to `ttl` ms by the layer). */
export type NewRefreshTokenData = Omit<NewRefreshToken, "ttl">

/** What presenting a refresh token for rotation found (bodies are JSON records). */
export type RotateReply =
  /** `previous` is the presented record before rotation (it was rotated at the call's `now`). */
  | { readonly _tag: "Rotated"; readonly previous: string; readonly current: string }
  /** `envelope` is the sealed pair the winning rotation stored (bound to the presented token's hash). */
  | { readonly _tag: "GraceReplay"; readonly current: RefreshRow; readonly envelope: string }
  | { readonly _tag: "ReuseDetected"; readonly grantId: string }
  | { readonly _tag: "NotFound" }

/** A rotation's successor, as the layer prepared it. */
export interface Successor {
  readonly hash: string
  /** The issued pair, sealed under `Keys.refreshSuccessor(presented hash)`. */
  readonly envelope: string
  /** The refresh-token TTL (ms); the successor never outlives its chain's absolute end. */
  readonly ttl: number
}

/** One provider's sealed tokens under an authorization id. */
export interface ProviderRow {
  readonly providerId: string
  readonly envelope: string
  readonly expiresAt: number
}

/** A provider's tokens moving to another authorization id: only if still `fromEnvelope` (resealed for the new id). */
export interface ProviderMove {
  readonly providerId: string
  readonly fromEnvelope: string
  readonly envelope: string
  readonly expiresAt: number
}

/** The sealed signing key set and its version. */
export interface KeySetRow {
  readonly version: number
  readonly envelope: string
}

export interface SessionLimits {
  readonly maxPerKey: number
  readonly maxSessions: number
}

export interface SessionTouch {
  /** `get` writes the last access only when this long has passed since the last write. */
  readonly touchInterval: number
  readonly idleTtl: number
}

/** A session patch as columns; null leaves a column as it is. */
export interface SessionPatchRow {
  readonly initialized: number | null
  readonly protocolVersion: string | null
  readonly clientInfo: string | null
}

export interface EvictedRow {
  readonly row: SessionRow
  readonly reason: EvictionReason
}

/**
 * The object's methods, as the object implements them (synchronously: each
 * call's whole check-and-write runs without an `await`, so no other request to
 * the object interleaves with it). Add a store by adding methods here and on
 * `StoreObject`.
 */
export interface StoreProtocol {
  // Pending authorizations (sealed).
  saveTransaction(ctx: CallContext, id: string, envelope: string, expiresAt: number): Reply<null>
  getTransaction(ctx: CallContext, id: string): Reply<string | null>
  takeTransaction(ctx: CallContext, id: string): Reply<string | null>
  // Authorization codes, under their hashes.
  saveCode(ctx: CallContext, hash: string, grantId: string, body: string, expiresAt: number): Reply<null>
  consumeCode(ctx: CallContext, hash: string): Reply<ConsumeReply>
  // Opaque access-token records.
  saveAccessToken(ctx: CallContext, hash: string, grantId: string, body: string, expiresAt: number): Reply<null>
  getAccessToken(ctx: CallContext, hash: string): Reply<string | null>
  revokeAccessToken(ctx: CallContext, hash: string): Reply<boolean>
  // Refresh tokens.
  saveRefreshToken(ctx: CallContext, hash: string, input: NewRefreshTokenData, ttl: number): Reply<string>
  getRefreshToken(ctx: CallContext, hash: string): Reply<RefreshRow | null>
  rotateRefreshToken(ctx: CallContext, hash: string, successor: Successor): Reply<RotateReply>
  // Grants.
  saveGrant(ctx: CallContext, id: string, body: string, expiresAt: number): Reply<null>
  getGrant(ctx: CallContext, id: string): Reply<string | null>
  revokeGrant(ctx: CallContext, id: string): Reply<boolean>
  // Provider tokens (sealed), per (authorization, provider).
  getProviderTokens(ctx: CallContext, authorizationId: string, providerId: string): Reply<string | null>
  putProviderTokens(ctx: CallContext, authorizationId: string, row: ProviderRow): Reply<null>
  deleteProviderTokens(ctx: CallContext, authorizationId: string, providerId: string): Reply<boolean>
  listProviderTokens(ctx: CallContext, authorizationId: string): Reply<ReadonlyArray<ProviderRow>>
  moveProviderTokens(ctx: CallContext, from: string, to: string, moves: ReadonlyArray<ProviderMove>): Reply<null>
  deleteAllProviderTokens(ctx: CallContext, authorizationId: string): Reply<null>
  // Sessions.
  createSession(ctx: CallContext, row: SessionRow, limits: SessionLimits): Reply<ReadonlyArray<EvictedRow>>
  getSession(ctx: CallContext, id: string, touch: SessionTouch): Reply<SessionRow | null>
  updateSession(ctx: CallContext, id: string, patch: SessionPatchRow): Reply<SessionRow | null>
  deleteSession(ctx: CallContext, id: string): Reply<boolean>
  listSessions(ctx: CallContext, apiKeyHash: string): Reply<ReadonlyArray<SessionRow>>
  // Registered clients (JSON, the secret only as a hash inside); cached metadata documents with their expiry.
  putClient(ctx: CallContext, clientId: string, body: string, expiresAt: number | null): Reply<null>
  getClient(ctx: CallContext, clientId: string): Reply<string | null>
  deleteClient(ctx: CallContext, clientId: string): Reply<boolean>
  // The signing key set (sealed), by compare-and-set on its version.
  getSigningKeys(ctx: CallContext): Reply<KeySetRow | null>
  compareAndSetSigningKeys(ctx: CallContext, expectedVersion: number | null, next: KeySetRow): Reply<boolean>
  // RateLimiter buckets, under their storage keys (`Keys.rateLimit`); the policy as the layer worked it out.
  consumeToken(ctx: CallContext, key: string, policy: Gcra): Reply<RateLimitDecision>
  checkTokens(ctx: CallContext, key: string, policy: Gcra): Reply<RateLimitDecision>
  refundToken(ctx: CallContext, key: string, policy: Gcra): Reply<null>
  resetBucket(ctx: CallContext, key: string): Reply<null>
  // ReplayCache ids, under their storage keys (`Keys.replay`): true for the first sighting.
  rememberId(ctx: CallContext, key: string, expiresAt: number): Reply<boolean>
  // Upkeep and audit.
  /** Delete expired rows now (bounded batches); how many went. */
  sweep(ctx: CallContext): Reply<number>
  /** Every row, as `RawStorage` shows it. */
  dump(ctx: CallContext): Reply<ReadonlyArray<string>>
}

/** The object as the layer sees it through its stub: every method answers asynchronously. */
export type StoreStub = {
  readonly [K in keyof StoreProtocol]: (...args: Parameters<StoreProtocol[K]>) => Promise<ReturnType<StoreProtocol[K]>>
}
