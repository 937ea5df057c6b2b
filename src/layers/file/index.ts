/**
 * The encrypted file backend (seed 000's `FileTokenStore`, for every store):
 * the memory backend's state, loaded from one file when the layer is built
 * and written back whole, sealed, after changes.
 *
 * - One file (`RS_TOKENS_FILE`, default `./data/tokens.enc`): a versioned
 *   header around one `Crypto` envelope (`RS_TOKENS_ENC_KEY` through the
 *   `Crypto` layer) that seals the snapshot of every store. Bearer secrets are
 *   lookup hashes inside it; provider tokens and signing keys are sealed again.
 * - Crash safe: each write goes to a temporary file in the same folder (mode
 *   0600 from creation), is fsynced, renamed over the file, and the folder is
 *   fsynced: the file is always the old snapshot or the new one.
 * - One writer: `<file>.lock` (pid and hostname) for the layer's lifetime.
 * - A file that does not open (corrupt, truncated, another key, unknown
 *   version) fails the layer's build with a `StoreError` and is left as is.
 * - The MCP streaming services are the memory backend's, not persisted: the
 *   `McpEventBus` reaches this process only, and the `McpEventStore`'s
 *   streams (short-lived, 5 minutes by default) are lost with the process.
 */
import { Config, type ConfigError, Context, Effect, Layer, Option, type Scope } from "effect"
import { resolve } from "node:path"
import { type RecordStores, type RecordStoreServices, storesContext } from "../../internal/storesContext.ts"
import { type StreamServices, withRawRows } from "../../internal/streamsContext.ts"
import { forkSweeper } from "../../internal/sweeper.ts"
import { resolveSweepInterval, type StoreOptions } from "../../schema/options.ts"
import type { ClientStore } from "../../services/ClientStore.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { ProviderTokenStore } from "../../services/ProviderTokenStore.ts"
import type { RateLimiter } from "../../services/RateLimiter.ts"
import type { ReplayCache } from "../../services/ReplayCache.ts"
import type { SessionStore } from "../../services/SessionStore.ts"
import type { SigningKeyStore } from "../../services/SigningKeyStore.ts"
import type { StoreError } from "../../services/StoreError.ts"
import { StoreMaintenance } from "../../services/StoreMaintenance.ts"
import type { TokenStore } from "../../services/TokenStore.ts"
import { makeMemoryState, type MemorySnapshotJson, type MemoryState } from "../memory/state.ts"
import { makeMemoryStreams } from "../memory/streams.ts"
import { pathConfig } from "./config.ts"
import { ensureDirectory, readWhole, removeIfExists, tempPathOf, writeDurably } from "./disk.ts"
import { type FlushPolicy, type FlushStats, makeFlusher } from "./flusher.ts"
import { decodeFile, encodeFile } from "./format.ts"
import { holdLock } from "./lock.ts"
import { makeFileMaintenance } from "./maintenance.ts"

export type { FlushPolicy, FlushStats } from "./flusher.ts"

/** The file backend's options: the file and when it is written, plus every backend's lifetimes and limits. */
export interface FileOptions extends StoreOptions {
  /** The store file; its folder is created when missing. */
  readonly path: string
  /** Default `"every-write"`: a changing call returns once its change is on disk. */
  readonly flush?: FlushPolicy
}

/** The file backend's own controls, beside the stores: the file's path, an explicit flush, write statistics. */
export class StoreFile extends Context.Tag("mcp-oauth-store/StoreFile")<StoreFile, StoreFile.Service>() {}

export declare namespace StoreFile {
  export interface Service {
    /** The absolute path of the store file. */
    readonly path: string
    /** Write every change not yet on disk, now (useful under the batched policy). */
    readonly flush: Effect.Effect<void, StoreError>
    readonly stats: Effect.Effect<FlushStats>
  }
}

/** Every store, plus the `StoreFile` controls, `StoreMaintenance` and the (in-memory) MCP streaming services. */
export type FileStores = RecordStores | StoreFile | StoreMaintenance | StreamServices

const persistedServices = (
  state: MemoryState,
  persisted: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E | StoreError>
) => {
  const p = <Args extends ReadonlyArray<unknown>, A>(f: (...args: Args) => Effect.Effect<A, StoreError>) =>
  (...args: Args): Effect.Effect<A, StoreError> => persisted(f(...args))
  const { clients, providerTokens, rateLimiter, replayCache, sessions, signingKeys, tokens } = state
  const tokenStore: TokenStore.Service = {
    saveTransaction: p(tokens.saveTransaction),
    getTransaction: p(tokens.getTransaction),
    takeTransaction: p(tokens.takeTransaction),
    saveCode: p(tokens.saveCode),
    consumeCode: p(tokens.consumeCode),
    saveAccessToken: p(tokens.saveAccessToken),
    getAccessToken: p(tokens.getAccessToken),
    revokeAccessToken: p(tokens.revokeAccessToken),
    saveRefreshToken: p(tokens.saveRefreshToken),
    getRefreshToken: p(tokens.getRefreshToken),
    rotateRefreshToken: p(tokens.rotateRefreshToken),
    saveGrant: p(tokens.saveGrant),
    getGrant: p(tokens.getGrant),
    revokeGrant: p(tokens.revokeGrant)
  }
  const providerTokenStore: ProviderTokenStore.Service = {
    storeTokens: p(providerTokens.storeTokens),
    getTokens: p(providerTokens.getTokens),
    deleteTokens: p(providerTokens.deleteTokens),
    getProviderIds: p(providerTokens.getProviderIds),
    migrateTokens: p(providerTokens.migrateTokens),
    deleteAll: p(providerTokens.deleteAll)
  }
  const sessionStore: SessionStore.Service = {
    create: p(sessions.create),
    get: p(sessions.get),
    update: p(sessions.update),
    delete: p(sessions.delete),
    listByApiKey: p(sessions.listByApiKey)
  }
  const clientStore: ClientStore.Service = {
    register: p(clients.register),
    get: p(clients.get),
    authenticate: p(clients.authenticate),
    delete: p(clients.delete)
  }
  const signingKeyStore: SigningKeyStore.Service = {
    get: persisted(signingKeys.get),
    compareAndSet: p(signingKeys.compareAndSet)
  }
  const rateLimiterStore: RateLimiter.Service = {
    consume: p(rateLimiter.consume),
    check: p(rateLimiter.check),
    refund: p(rateLimiter.refund),
    reset: p(rateLimiter.reset)
  }
  const replayCacheStore: ReplayCache.Service = { remember: p(replayCache.remember) }
  const services: RecordStoreServices = {
    tokens: tokenStore,
    providerTokens: providerTokenStore,
    sessions: sessionStore,
    clients: clientStore,
    signingKeys: signingKeyStore,
    rateLimiter: rateLimiterStore,
    replayCache: replayCacheStore,
    raw: state.raw
  }
  return services
}

/**
 * Every store, kept in memory and persisted to one encrypted file. The file
 * is read (and its lock taken) while the layer is built, so the first request
 * already sees everything; the layer fails with a `StoreError` (`Corrupt`,
 * `DecryptFailed`, `Conflict` for a file locked by a live process,
 * `Unavailable`) instead of starting on a file it cannot read, and never
 * writes over such a file. Expired records are swept every 60 s, each by its
 * own expiry (a record that still holds a refresh token lives as long as the
 * refresh token). When the scope closes, pending changes are written and the
 * lock is released.
 *
 * `RawStorage` shows the records the sealed snapshot holds (what the file
 * contains once opened), as the memory backend shows them.
 */
export const layer = (options: FileOptions): Layer.Layer<FileStores, StoreError, Crypto> => Layer.scopedContext(make(options))

/** `layer`'s work in the current scope (the file is released when the scope closes): for composing by hand. */
export const make = (options: FileOptions): Effect.Effect<Context.Context<FileStores>, StoreError, Crypto | Scope.Scope> =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const path = resolve(options.path)
    yield* ensureDirectory(path)
    yield* holdLock(path)
    // Only this process writes the file now: a temporary file left by a crash is garbage.
    yield* removeIfExists(tempPathOf(path), "FileStore.open")
    const existing = yield* readWhole(path)
    const loaded = Option.isSome(existing) ? Option.some(yield* decodeFile(crypto, path, existing.value)) : Option.none()

    const state = yield* makeMemoryState(options)
    if (Option.isSome(loaded)) state.restore(loaded.value)

    const write = (snapshot: MemorySnapshotJson) =>
      Effect.flatMap(encodeFile(crypto, snapshot), (text) => Effect.as(writeDurably(path, text), text.length))
    const flusher = yield* makeFlusher(
      state,
      write,
      options.flush ?? "every-write",
      Option.match(existing, { onNone: () => 0, onSome: (bytes) => bytes.length })
    )
    // Runs once the sweeper below has stopped, and before the lock is released.
    yield* Effect.addFinalizer(() =>
      flusher.flush.pipe(
        Effect.catchAll((error) => Effect.logError("could not write the last changes before closing", error)),
        Effect.annotateLogs("module", "FileStore")
      )
    )
    const streams = yield* makeMemoryStreams(options)
    yield* forkSweeper(
      "FileStore",
      resolveSweepInterval(options),
      Effect.zipWith(flusher.persistedInBackground(state.sweep), streams.sweep, (a, b) => a + b)
    )

    const control: StoreFile.Service = { path, flush: flusher.flush, stats: flusher.stats }
    const services = persistedServices(state, flusher.persisted)
    return storesContext({ ...services, raw: withRawRows(services.raw, streams.dump) }).pipe(
      Context.add(StoreFile, control),
      Context.add(StoreMaintenance, yield* makeFileMaintenance(state, flusher, path)),
      Context.merge(streams.context)
    )
  })

/**
 * `layer` with the path read from `RS_TOKENS_FILE` and the other options from
 * `config`. The key comes from the `Crypto` layer (`NodeCrypto.layerConfig()`
 * reads `RS_TOKENS_ENC_KEY`).
 */
export const layerConfig = (
  config: Config.Config<Omit<FileOptions, "path">> = Config.succeed({})
): Layer.Layer<FileStores, StoreError | ConfigError.ConfigError, Crypto> =>
  Layer.unwrapEffect(Effect.map(Config.all([pathConfig, config]), ([path, options]) => layer({ ...options, path })))
