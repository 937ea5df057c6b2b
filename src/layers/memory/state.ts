import { Effect, Schema } from "effect"
import type { RecordStoreServices } from "../../internal/storesContext.ts"
import {
  resolveRateLimiterOptions,
  resolveReplayCacheOptions,
  resolveSessionStoreOptions,
  resolveTokenStoreOptions,
  type StoreOptions
} from "../../schema/options.ts"
import type { Crypto } from "../../services/Crypto.ts"
import { ProviderTokenStore } from "../../services/ProviderTokenStore.ts"
import { ClientStoreState, makeClientStore } from "./clientStore.ts"
import { makeProviderTokenStore, ProviderTokenStoreState } from "./providerTokenStore.ts"
import { makeRateLimiter, RateLimiterState } from "./rateLimiter.ts"
import { makeReplayCache, ReplayCacheState } from "./replayCache.ts"
import { makeSessionStore, SessionStoreState } from "./sessionStore.ts"
import { makeSigningKeyStore, SigningKeyStoreState } from "./signingKeyStore.ts"
import { makeTokenStore, TokenStoreState } from "./tokenStore.ts"

/**
 * The whole state of every memory store, as one value: what a wrapper that
 * persists the memory stores (the file backend) writes and reads back. The
 * encoded form is plain JSON; provider tokens, successor pairs and signing
 * keys stay sealed inside it, bearer secrets are only lookup hashes.
 */
export const MemorySnapshot = Schema.Struct({
  tokens: TokenStoreState,
  providerTokens: ProviderTokenStoreState,
  sessions: SessionStoreState,
  clients: ClientStoreState,
  signingKeys: SigningKeyStoreState,
  // Absent from files written before the rate limiter and replay cache existed: read as empty.
  rateLimits: Schema.optionalWith(RateLimiterState, { default: () => [] }),
  replayIds: Schema.optionalWith(ReplayCacheState, { default: () => [] })
})
export type MemorySnapshot = typeof MemorySnapshot.Type
/** `MemorySnapshot` in its encoded form: plain JSON (what `JSON.stringify` writes as is). */
export type MemorySnapshotJson = typeof MemorySnapshot.Encoded

/** One build of the memory stores, with what a persisting wrapper needs around them. */
export interface MemoryState extends RecordStoreServices {
  /** Remove every expired record; the number removed. */
  readonly sweep: Effect.Effect<number>
  /**
   * The whole state as plain JSON, taken in one synchronous step (a
   * consistent point in time). Decode it with `MemorySnapshot` to restore it.
   */
  readonly snapshot: () => MemorySnapshotJson
  /** Replace the whole state with a decoded snapshot (LRU order kept, indexes rebuilt, limits applied). */
  readonly restore: (snapshot: MemorySnapshot) => void
  /**
   * A counter that grows on every change of the state: writes, deletions
   * (including expired records dropped by a read or a sweep), session touches.
   * Recency bumps of a read (`getAccessToken`) do not count. Compare two
   * readings to know whether anything changed between them.
   */
  readonly changes: () => number
}

/** Build the memory stores without a sweeper (the caller runs `sweep`): the memory and file backends' common core. */
export const makeMemoryState = (options: StoreOptions = {}): Effect.Effect<MemoryState, never, Crypto> =>
  Effect.gen(function*() {
    const providerTokens = yield* makeProviderTokenStore(options.providerTokens)
    const tokens = yield* makeTokenStore(resolveTokenStoreOptions(options.tokens)).pipe(
      Effect.provideService(ProviderTokenStore, providerTokens.service)
    )
    const sessions = yield* makeSessionStore(resolveSessionStoreOptions(options.sessions))
    const clients = yield* makeClientStore
    const signingKeys = yield* makeSigningKeyStore
    const rateLimiter = yield* makeRateLimiter(resolveRateLimiterOptions(options.rateLimiter))
    const replayCache = yield* makeReplayCache(resolveReplayCacheOptions(options.replayCache))

    return {
      tokens: tokens.service,
      providerTokens: providerTokens.service,
      sessions: sessions.service,
      clients: clients.service,
      signingKeys: signingKeys.service,
      rateLimiter: rateLimiter.service,
      replayCache: replayCache.service,
      raw: {
        dump: Effect.sync(() => [
          ...tokens.dump(),
          ...providerTokens.dump(),
          ...sessions.dump(),
          ...clients.dump(),
          ...signingKeys.dump(),
          ...rateLimiter.dump(),
          ...replayCache.dump()
        ])
      },
      sweep: Effect.map(
        Effect.all([tokens.sweep, sessions.sweep, providerTokens.sweep, rateLimiter.sweep, replayCache.sweep, clients.sweep]),
        (removed) => removed.reduce((a, b) => a + b, 0)
      ),
      snapshot: () => ({
        tokens: tokens.snapshot(),
        providerTokens: providerTokens.snapshot(),
        sessions: sessions.snapshot(),
        clients: clients.snapshot(),
        signingKeys: signingKeys.snapshot(),
        rateLimits: rateLimiter.snapshot(),
        replayIds: replayCache.snapshot()
      }),
      restore: (snapshot) => {
        tokens.restore(snapshot.tokens)
        providerTokens.restore(snapshot.providerTokens)
        sessions.restore(snapshot.sessions)
        clients.restore(snapshot.clients)
        signingKeys.restore(snapshot.signingKeys)
        rateLimiter.restore(snapshot.rateLimits)
        replayCache.restore(snapshot.replayIds)
      },
      changes: () =>
        tokens.changes() + providerTokens.changes() + sessions.changes() + clients.changes() + signingKeys.changes() +
        rateLimiter.changes() + replayCache.changes()
    }
  })
