import { type Config, type ConfigError, Context, Effect, Layer } from "effect"
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
import { makeClientStore } from "./clientStore.ts"
import { makeProviderTokenStore } from "./providerTokenStore.ts"
import { makeSessionStore } from "./sessionStore.ts"
import { makeSigningKeyStore } from "./signingKeyStore.ts"
import { makeTokenStore } from "./tokenStore.ts"

export interface MemoryOptions extends SweepOptions {
  readonly tokens?: TokenStoreOptions
  readonly sessions?: SessionStoreOptions
  readonly providerTokens?: ProviderTokenStoreOptions
}

/** Every store the memory backend provides. */
export type MemoryStores = TokenStore | SessionStore | ProviderTokenStore | ClientStore | SigningKeyStore | RawStorage

/**
 * All the stores in process memory, with seed 000's limits as defaults and a
 * sweep fiber (every 60 s) that lives as long as the layer. State belongs to
 * one build of the layer: two builds share nothing. Requires `Crypto` for
 * lookup hashes and for sealing provider tokens.
 */
export const layer = (options: MemoryOptions = {}): Layer.Layer<MemoryStores, never, Crypto> =>
  Layer.scopedContext(Effect.gen(function*() {
    const providerTokens = yield* makeProviderTokenStore(options.providerTokens)
    const tokens = yield* makeTokenStore(resolveTokenStoreOptions(options.tokens)).pipe(
      Effect.provideService(ProviderTokenStore, providerTokens.service)
    )
    const sessions = yield* makeSessionStore(resolveSessionStoreOptions(options.sessions))
    const clients = yield* makeClientStore
    const signingKeys = yield* makeSigningKeyStore

    yield* forkSweeper(
      "MemoryStore",
      resolveSweepInterval(options),
      Effect.map(Effect.all([tokens.sweep, sessions.sweep, providerTokens.sweep]), ([a, b, c]) => a + b + c)
    )

    const raw: RawStorage.Service = {
      dump: Effect.sync(() => [
        ...tokens.dump(),
        ...providerTokens.dump(),
        ...sessions.dump(),
        ...clients.dump(),
        ...signingKeys.dump()
      ])
    }
    return Context.make(TokenStore, tokens.service).pipe(
      Context.add(ProviderTokenStore, providerTokens.service),
      Context.add(SessionStore, sessions.service),
      Context.add(ClientStore, clients.service),
      Context.add(SigningKeyStore, signingKeys.service),
      Context.add(RawStorage, raw)
    )
  }))

/** `layer` with its options read from `Config` (for example `Config.succeed({ ... })` or env-backed values). */
export const layerConfig = (
  config: Config.Config<MemoryOptions>
): Layer.Layer<MemoryStores, ConfigError.ConfigError, Crypto> =>
  Layer.unwrapEffect(Effect.map(config, layer))
