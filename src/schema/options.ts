import { Duration } from "effect"

/**
 * Lifetimes and limits shared by every backend. Defaults are the seeds':
 * seed 000's memory limits and TTLs, seed 002's token lifetimes.
 */
export interface TokenStoreOptions {
  /** Pending authorizations (seed 000: 10 minutes). */
  readonly transactionTtl?: Duration.DurationInput
  /** Authorization codes (seed 002: 60 seconds; seed 000 allows 10 minutes). */
  readonly codeTtl?: Duration.DurationInput
  /** Opaque RS access-token records (seed 000: 7 days). */
  readonly accessTokenTtl?: Duration.DurationInput
  /** Refresh tokens (seed 002: 30 days), never past the chain's absolute lifetime. */
  readonly refreshTokenTtl?: Duration.DurationInput
  /** Grants: the absolute lifetime of a refresh chain (default 90 days). */
  readonly grantTtl?: Duration.DurationInput
  /** How long the immediate predecessor of a refresh token may be replayed (default 30 s). */
  readonly refreshGraceWindow?: Duration.DurationInput
  /** Bounded backends only: pending authorizations kept at once (seed 000: 1,000). */
  readonly maxTransactions?: number
  /** Bounded backends only: authorization codes kept at once (default 1,000). */
  readonly maxCodes?: number
  /** Bounded backends only: RS token records kept at once, per kind (seed 000: 10,000). */
  readonly maxTokenRecords?: number
}

/** Lifetimes and limits of MCP sessions (seed 000's by default). */
export interface SessionStoreOptions {
  /** Sliding idle lifetime (seed 000: 24 hours). */
  readonly idleTtl?: Duration.DurationInput
  /** Absolute lifetime from creation (default 7 days). */
  readonly absoluteTtl?: Duration.DurationInput
  /** Sessions per API key (seed 000: 5). */
  readonly maxPerKey?: number
  /** Sessions in all (seed 000: 10,000). */
  readonly maxSessions?: number
  /** `get` writes the last-access time at most this often per session (default 10 s). */
  readonly touchInterval?: Duration.DurationInput
}

/** Lifetimes of provider-token records. */
export interface ProviderTokenStoreOptions {
  /** Lifetime of a record whose provider gave no expiry for the token that keeps it alive (default 30 days). */
  readonly defaultTtl?: Duration.DurationInput
}

/** Bounded backends only (memory, file): how many rate-limit buckets are kept at once. */
export interface RateLimiterOptions {
  /**
   * Buckets (bucket, key) kept at once (default 100,000). Past it a bucket is
   * forgotten by second chance (an approximation of least recently used: full
   * buckets and buckets unused since the last pass go first), which gives its
   * key a full bucket again, as nginx's `limit_req` does when its zone is full.
   */
  readonly maxKeys?: number
}

/** Bounded backends only (memory, file): how many replay-cache ids are kept at once. */
export interface ReplayCacheOptions {
  /**
   * Ids kept at once (default 100,000). A live id is never forgotten to make
   * room: past the bound, expired ids are dropped (earliest expiry first),
   * and when every id is live `remember` fails with `StoreError`
   * `Unavailable` until some expire.
   */
  readonly maxIds?: number
}

/** `RateLimiterOptions` with the default filled in. */
export interface ResolvedRateLimiterOptions {
  readonly maxKeys: number
}

/** `ReplayCacheOptions` with the default filled in. */
export interface ResolvedReplayCacheOptions {
  readonly maxIds: number
}

/** Fill in the default bound. */
export const resolveRateLimiterOptions = (o: RateLimiterOptions = {}): ResolvedRateLimiterOptions => ({
  maxKeys: o.maxKeys ?? 100_000
})

/** Fill in the default bound. */
export const resolveReplayCacheOptions = (o: ReplayCacheOptions = {}): ResolvedReplayCacheOptions => ({
  maxIds: o.maxIds ?? 100_000
})

/** Resumable SSE streams (`McpEventStore`): their bounds and lifetime. */
export interface McpEventStoreOptions {
  /** Events kept per stream; past it the oldest are dropped (default 100). */
  readonly maxEventsPerStream?: number
  /** Memory backends only: streams kept at once, the least recently active evicted (default 1,000). */
  readonly maxStreams?: number
  /** A stream and its events expire this long after its last append or replay (default 5 minutes). */
  readonly streamTtl?: Duration.DurationInput
}

/** The change-event bus (`McpEventBus`) of one instance. */
export interface McpEventBusOptions {
  /**
   * Events buffered on this instance for subscriptions that have not taken
   * them yet (default 1,024). A subscription that falls this far behind loses
   * its oldest events; publishers and other subscriptions never wait for it.
   */
  readonly bufferSize?: number
}

/** How often expired records are swept (seed 000: 60 s). */
export interface SweepOptions {
  /** `Duration.infinity`: never (for a tool that opens the store beside the servers that sweep it). */
  readonly sweepInterval?: Duration.DurationInput
}

/**
 * The options every backend accepts: the stores' lifetimes and limits, and
 * the sweep interval. Each backend's options extend this with what its
 * storage needs (a file, a connection, a binding).
 */
export interface StoreOptions extends SweepOptions {
  readonly tokens?: TokenStoreOptions
  readonly sessions?: SessionStoreOptions
  readonly providerTokens?: ProviderTokenStoreOptions
  /** Bounded backends only (memory, file). */
  readonly rateLimiter?: RateLimiterOptions
  /** Bounded backends only (memory, file). */
  readonly replayCache?: ReplayCacheOptions
  readonly eventStore?: McpEventStoreOptions
  readonly eventBus?: McpEventBusOptions
}

const millis = (input: Duration.DurationInput | undefined, fallback: Duration.DurationInput): number =>
  Duration.toMillis(Duration.decode(input ?? fallback))

export interface ResolvedTokenStoreOptions {
  readonly transactionTtl: number
  readonly codeTtl: number
  readonly accessTokenTtl: number
  readonly refreshTokenTtl: number
  readonly grantTtl: number
  readonly refreshGraceWindow: number
  readonly maxTransactions: number
  readonly maxCodes: number
  readonly maxTokenRecords: number
}

/** Fill in the defaults; durations become milliseconds. */
export const resolveTokenStoreOptions = (o: TokenStoreOptions = {}): ResolvedTokenStoreOptions => ({
  transactionTtl: millis(o.transactionTtl, "10 minutes"),
  codeTtl: millis(o.codeTtl, "60 seconds"),
  accessTokenTtl: millis(o.accessTokenTtl, "7 days"),
  refreshTokenTtl: millis(o.refreshTokenTtl, "30 days"),
  grantTtl: millis(o.grantTtl, "90 days"),
  refreshGraceWindow: millis(o.refreshGraceWindow, "30 seconds"),
  maxTransactions: o.maxTransactions ?? 1_000,
  maxCodes: o.maxCodes ?? 1_000,
  maxTokenRecords: o.maxTokenRecords ?? 10_000
})

export interface ResolvedSessionStoreOptions {
  readonly idleTtl: number
  readonly absoluteTtl: number
  readonly maxPerKey: number
  readonly maxSessions: number
  readonly touchInterval: number
}

export const resolveSessionStoreOptions = (o: SessionStoreOptions = {}): ResolvedSessionStoreOptions => ({
  idleTtl: millis(o.idleTtl, "24 hours"),
  absoluteTtl: millis(o.absoluteTtl, "7 days"),
  maxPerKey: o.maxPerKey ?? 5,
  maxSessions: o.maxSessions ?? 10_000,
  touchInterval: millis(o.touchInterval, "10 seconds")
})

export const resolveProviderTokenStoreOptions = (o: ProviderTokenStoreOptions = {}) => ({
  defaultTtl: millis(o.defaultTtl, "30 days")
})

export interface ResolvedMcpEventStoreOptions {
  readonly maxEventsPerStream: number
  readonly maxStreams: number
  readonly streamTtl: number
}

export const resolveMcpEventStoreOptions = (o: McpEventStoreOptions = {}): ResolvedMcpEventStoreOptions => ({
  maxEventsPerStream: o.maxEventsPerStream ?? 100,
  maxStreams: o.maxStreams ?? 1_000,
  streamTtl: millis(o.streamTtl, "5 minutes")
})

export const resolveMcpEventBusOptions = (o: McpEventBusOptions = {}) => ({
  bufferSize: o.bufferSize ?? 1_024
})

export const resolveSweepInterval = (o: SweepOptions = {}): Duration.Duration =>
  Duration.decode(o.sweepInterval ?? "60 seconds")
