/**
 * The Durable Object backend's layer: the part that runs where the Worker's
 * code runs (no `node:` import, no `cloudflare:workers` import, so it also
 * runs in Node against Miniflare). See `index.ts` for the design.
 */
import { type Config, type ConfigError, Context, Duration, Effect, Layer } from "effect"
import { fullyAtomic, type StoreCapabilities } from "../../schema/capabilities.ts"
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
import { Crypto } from "../../services/Crypto.ts"
import { ProviderTokenStore } from "../../services/ProviderTokenStore.ts"
import { RawStorage } from "../../services/RawStorage.ts"
import { SessionStore } from "../../services/SessionStore.ts"
import { SigningKeyStore } from "../../services/SigningKeyStore.ts"
import { TokenStore } from "../../services/TokenStore.ts"
import { makeChannel, namespaceFromEnv, type StoreNamespace } from "./binding.ts"
import { makeClientStore } from "./clientStore.ts"
import { makeProviderTokenStore } from "./providerTokenStore.ts"
import { makeRawStorage } from "./rawStorage.ts"
import { makeSessionStore } from "./sessionStore.ts"
import { makeSigningKeyStore } from "./signingKeyStore.ts"
import { makeTokenStore } from "./tokenStore.ts"

export { namespaceFromEnv, type StoreNamespace } from "./binding.ts"

export interface DurableOptions extends SweepOptions {
  /** The namespace bound to `StoreObject` with SQLite storage (`env.STORE`). */
  readonly namespace: StoreNamespace
  /**
   * The store's name (default `default`): its records live in the objects
   * `objectNames(name)`. Different names are separate stores (tenants), each
   * with its own objects, so each adds its own throughput.
   */
  readonly name?: string
  readonly tokens?: TokenStoreOptions
  readonly sessions?: SessionStoreOptions
  readonly providerTokens?: ProviderTokenStoreOptions
}

/** Every store the Durable Object backend provides. */
export type DurableStores = TokenStore | SessionStore | ProviderTokenStore | ClientStore | SigningKeyStore | RawStorage

/** Every operation is atomic: one synchronous call to one object each. */
export const capabilities: StoreCapabilities = fullyAtomic

/**
 * The objects of the store `name`: `tokens` holds the token state, grants,
 * provider tokens, clients and the signing keys (everything `revokeGrant` and
 * the OAuth flows touch together); `sessions` holds the MCP sessions (the hot
 * path of every MCP request, and nothing it shares with the rest).
 */
export const objectNames = (name: string) => ({ tokens: `${name}/tokens`, sessions: `${name}/sessions` }) as const

/**
 * All the stores on Durable Objects of one namespace. Requires `Crypto` (the
 * `WebCrypto` layer on Workers): hashing and sealing happen here, so the
 * objects only ever hold lookup hashes and ciphertexts. The layer holds no
 * state and forks no fiber; expiry is swept inside the objects (on the calls'
 * time, and by their alarms when idle, every `sweepInterval`).
 */
export const layer = (options: DurableOptions): Layer.Layer<DurableStores, never, Crypto> =>
  Layer.effectContext(Effect.gen(function*() {
    const crypto = yield* Crypto
    const tokenOptions = resolveTokenStoreOptions(options.tokens)
    const settings = {
      sweepEvery: Duration.toMillis(resolveSweepInterval(options)),
      graceWindow: tokenOptions.refreshGraceWindow
    }
    const names = objectNames(options.name ?? "default")
    const tokens = makeChannel(options.namespace, names.tokens, settings)
    const sessions = makeChannel(options.namespace, names.sessions, settings)

    return Context.make(TokenStore, makeTokenStore(tokens, crypto, tokenOptions)).pipe(
      Context.add(ProviderTokenStore, makeProviderTokenStore(tokens, crypto, options.providerTokens)),
      Context.add(SessionStore, makeSessionStore(sessions, crypto, resolveSessionStoreOptions(options.sessions))),
      Context.add(ClientStore, makeClientStore(tokens, crypto)),
      Context.add(SigningKeyStore, makeSigningKeyStore(tokens, crypto)),
      Context.add(RawStorage, makeRawStorage([tokens, sessions]))
    )
  }))

/** `layer`'s options with the namespace named by its binding in the Worker's `env`. */
export interface DurableEnvOptions extends Omit<DurableOptions, "namespace"> {
  /** The binding's name (default `STORE`). */
  readonly binding?: string
}

/**
 * `layer` over the namespace bound in a Worker's `env` (`env.STORE` unless
 * `binding` says otherwise); a missing or wrong binding is a `ConfigError`.
 */
export const layerEnv = (
  env: object,
  options: DurableEnvOptions = {}
): Layer.Layer<DurableStores, ConfigError.ConfigError, Crypto> =>
  Layer.unwrapEffect(
    Effect.map(namespaceFromEnv(env, options.binding ?? "STORE"), (namespace) => layer({ ...options, namespace }))
  )

/** `layerEnv` with its options read from `Config`. */
export const layerConfig = (
  env: object,
  config: Config.Config<DurableEnvOptions>
): Layer.Layer<DurableStores, ConfigError.ConfigError, Crypto> =>
  Layer.unwrapEffect(Effect.map(config, (options) => layerEnv(env, options)))
