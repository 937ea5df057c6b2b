import { type Config, type ConfigError, Context, Effect, Layer, Schema } from "effect"
import { forkSweeper } from "../../internal/sweeper.ts"
import {
  type ProviderTokenStoreOptions,
  resolveSessionStoreOptions,
  resolveSweepInterval,
  resolveTokenStoreOptions,
  type SessionStoreOptions,
  type SweepOptions,
  type TokenStoreOptions
} from "../../schema/options.ts"
import { ClientStore } from "../../services/ClientStore.ts"
import type { Crypto } from "../../services/Crypto.ts"
import { ProviderTokenStore } from "../../services/ProviderTokenStore.ts"
import { RawStorage } from "../../services/RawStorage.ts"
import { SessionStore } from "../../services/SessionStore.ts"
import { SigningKeyStore } from "../../services/SigningKeyStore.ts"
import { TokenStore } from "../../services/TokenStore.ts"
import { ClientStoreState, makeClientStore } from "./clientStore.ts"
import { makeProviderTokenStore, ProviderTokenStoreState } from "./providerTokenStore.ts"
import { makeSessionStore, SessionStoreState } from "./sessionStore.ts"
import { makeSigningKeyStore, SigningKeyStoreState } from "./signingKeyStore.ts"
import { makeTokenStore, TokenStoreState } from "./tokenStore.ts"

export interface MemoryOptions extends SweepOptions {
  readonly tokens?: TokenStoreOptions
  readonly sessions?: SessionStoreOptions
  readonly providerTokens?: ProviderTokenStoreOptions
}

/** Every store the memory backend provides. */
export type MemoryStores = TokenStore | SessionStore | ProviderTokenStore | ClientStore | SigningKeyStore | RawStorage

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
  signingKeys: SigningKeyStoreState
})
export type MemorySnapshot = typeof MemorySnapshot.Type
/** `MemorySnapshot` in its encoded form: plain JSON (what `JSON.stringify` writes as is). */
export type MemorySnapshotJson = typeof MemorySnapshot.Encoded

/** One build of the memory stores, with what a persisting wrapper needs around them. */
export interface MemoryState {
  readonly tokens: TokenStore.Service
  readonly providerTokens: ProviderTokenStore.Service
  readonly sessions: SessionStore.Service
  readonly clients: ClientStore.Service
  readonly signingKeys: SigningKeyStore.Service
  readonly raw: RawStorage.Service
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

/** Build the memory stores without a layer or a sweeper (the caller runs `sweep`). */
export const make = (options: MemoryOptions = {}): Effect.Effect<MemoryState, never, Crypto> =>
  Effect.gen(function*() {
    const providerTokens = yield* makeProviderTokenStore(options.providerTokens)
    const tokens = yield* makeTokenStore(resolveTokenStoreOptions(options.tokens)).pipe(
      Effect.provideService(ProviderTokenStore, providerTokens.service)
    )
    const sessions = yield* makeSessionStore(resolveSessionStoreOptions(options.sessions))
    const clients = yield* makeClientStore
    const signingKeys = yield* makeSigningKeyStore

    return {
      tokens: tokens.service,
      providerTokens: providerTokens.service,
      sessions: sessions.service,
      clients: clients.service,
      signingKeys: signingKeys.service,
      raw: {
        dump: Effect.sync(() => [
          ...tokens.dump(),
          ...providerTokens.dump(),
          ...sessions.dump(),
          ...clients.dump(),
          ...signingKeys.dump()
        ])
      },
      sweep: Effect.map(Effect.all([tokens.sweep, sessions.sweep, providerTokens.sweep]), ([a, b, c]) => a + b + c),
      snapshot: () => ({
        tokens: tokens.snapshot(),
        providerTokens: providerTokens.snapshot(),
        sessions: sessions.snapshot(),
        clients: clients.snapshot(),
        signingKeys: signingKeys.snapshot()
      }),
      restore: (snapshot) => {
        tokens.restore(snapshot.tokens)
        providerTokens.restore(snapshot.providerTokens)
        sessions.restore(snapshot.sessions)
        clients.restore(snapshot.clients)
        signingKeys.restore(snapshot.signingKeys)
      },
      changes: () => tokens.changes() + providerTokens.changes() + sessions.changes() + clients.changes() + signingKeys.changes()
    }
  })

/** The context of every store, from one build. */
export const storesContext = (state: Pick<MemoryState, "tokens" | "providerTokens" | "sessions" | "clients" | "signingKeys" | "raw">): Context.Context<MemoryStores> =>
  Context.make(TokenStore, state.tokens).pipe(
    Context.add(ProviderTokenStore, state.providerTokens),
    Context.add(SessionStore, state.sessions),
    Context.add(ClientStore, state.clients),
    Context.add(SigningKeyStore, state.signingKeys),
    Context.add(RawStorage, state.raw)
  )

/**
 * All the stores in process memory, with seed 000's limits as defaults and a
 * sweep fiber (every 60 s) that lives as long as the layer. State belongs to
 * one build of the layer: two builds share nothing. Requires `Crypto` for
 * lookup hashes and for sealing provider tokens.
 */
export const layer = (options: MemoryOptions = {}): Layer.Layer<MemoryStores, never, Crypto> =>
  Layer.scopedContext(Effect.gen(function*() {
    const state = yield* make(options)
    yield* forkSweeper("MemoryStore", resolveSweepInterval(options), state.sweep)
    return storesContext(state)
  }))

/** `layer` with its options read from `Config` (for example `Config.succeed({ ... })` or env-backed values). */
export const layerConfig = (
  config: Config.Config<MemoryOptions>
): Layer.Layer<MemoryStores, ConfigError.ConfigError, Crypto> =>
  Layer.unwrapEffect(Effect.map(config, layer))
