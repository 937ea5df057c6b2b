/**
 * The Cloudflare Durable Object backend: every store atomic on Workers. This
 * module is the layer, which runs wherever the Worker's code runs (no `node:`
 * import, no `cloudflare:workers` import: it also runs in Node against
 * Miniflare); the object class is `object/storeObject.ts`. Both are exported
 * by `mcp-oauth-store/durable`.
 *
 * ```ts
 * import { Layer } from "effect"
 * import { WebCrypto } from "mcp-oauth-store/crypto/web"
 * import { DurableStore } from "mcp-oauth-store/durable"
 * export { StoreObject } from "mcp-oauth-store/durable" // the class the binding runs
 * // wrangler.toml: [[durable_objects.bindings]] name = "STORE", class_name = "StoreObject"
 * //                [[migrations]] tag = "v1", new_sqlite_classes = ["StoreObject"]
 * const stores = (env: object) => DurableStore.layerEnv(env).pipe(Layer.provide(WebCrypto.layerConfig()))
 * ```
 *
 * **The split.** `StoreObject` (`object/`) is the code that runs inside the
 * object, on its SQLite storage (`ctx.storage.sql`, `transactionSync`): the
 * same tables and SQL steps as the SQLite backend. The layer (this module)
 * runs wherever the Worker's code runs and provides the ports; each store
 * operation is one JS RPC call on the object's stub (`protocol.ts`). One
 * object runs one request at a time as long as no non-storage `await`
 * intervenes, and every method runs synchronously from its first read to its
 * last write, so consume, take, rotation with grace and reuse detection,
 * grant revocation, the per-key and global session limits with LRU eviction
 * and the signing-key compare-and-set are atomic however many Worker
 * isolates call at once. Hashing and sealing (`Crypto`) happen in the layer:
 * the object sees lookup hashes, envelopes and record bodies, never a bearer
 * secret, a provider token or a key.
 *
 * **Records to objects.** One store is two objects plus the primitives'
 * shards (`objectNames(name, shards)`): `{name}/tokens` with pending
 * authorizations, codes, access and refresh tokens, grants, provider tokens,
 * clients and signing keys; `{name}/sessions` with the MCP sessions; and
 * `{name}/primitives/{i}` (`primitiveShards`, default 1) with the
 * `RateLimiter`'s buckets and the `ReplayCache`'s ids. Everything
 * `revokeGrant` removes, and everything a token lookup by hash can hit, is in
 * one object, so revocation is one transaction and a lookup needs no routing.
 * Sessions share nothing transactional with the rest and are read on every
 * MCP request, so they get their own object: the global session cap and its
 * LRU need every session in one place, which one object gives exactly.
 * Sharding those further was weighed and left out: by grant, a token lookup
 * (which knows only the token's hash) could not find its object; by token
 * hash, `revokeGrant` would span objects and stop being atomic; by API key,
 * the global cap would become a per-shard one. Rate-limit buckets and replay
 * ids, on the other hand, are independent of each other and of everything
 * else: each lives in the one shard its storage key hashes to, so its steps
 * stay atomic, and a busy limiter (an anonymous-request budget, a DPoP `jti`
 * on every request) neither waits behind the token flows nor they behind it.
 * Choose `primitiveShards` once: a different count maps keys to other
 * objects, which forgets every bucket (full again) and every remembered id
 * (a replay within its lifetime would be `First` once more).
 * The price of one object is throughput: each object serializes its calls.
 * Cloudflare quotes about 1,000 requests per second per object; inside
 * the object one operation costs tens of microseconds (`bench/durable.ts`), so
 * the bound is the request rate, not SQLite. Stores under different `name`s
 * (tenants, or one per MCP server) have objects of their own and scale out.
 *
 * **Time.** The layer reads Effect's `Clock` and sends `now` with every call
 * (`CallContext`): every expiry decision is taken at the caller's time, as on
 * the other backends, and `TestClock` drives it in tests. Expired rows are
 * never served (every read filters on `now`); the object deletes them in
 * bounded batches when a call arrives and a sweep is due (`sweepInterval`,
 * caller time), and an alarm sweeps an object no one calls: its time is the
 * caller time it was planned from plus the real time elapsed since.
 *
 * **Errors.** A call that does not come back (object unreachable, reset,
 * overloaded, binding gone) is `StoreError` `Unavailable`: as with any remote
 * store, it may have been applied. A row that does not decode is `Corrupt`
 * (a rotation over a corrupt row is rolled back); a SQLite constraint is
 * `Conflict`. Failures never carry values or secrets.
 *
 * Adding a store: its steps in `object/`, a migration in `object/schema.ts`,
 * its methods in `protocol.ts` and on `StoreObject`, its port over a
 * `Channel` in the layer (as `rateLimiter.ts` and `replayCache.ts` were).
 */
import type { DurableObjectNamespace } from "@cloudflare/workers-types"
import { Config, type ConfigError, type Context, Duration, Effect, Layer } from "effect"
import { type RecordStores, storesContext } from "../../internal/storesContext.ts"
import { fullyAtomic, type StoreCapabilities } from "../../schema/capabilities.ts"
import {
  resolveSessionStoreOptions,
  resolveSweepInterval,
  resolveTokenStoreOptions,
  type StoreOptions
} from "../../schema/options.ts"
import { Crypto } from "../../services/Crypto.ts"
import { StoreError } from "../../services/StoreError.ts"
import { makeChannel, namespaceFromEnv, type StoreNamespace } from "./binding.ts"
import { makeClientStore } from "./clientStore.ts"
import { makeProviderTokenStore } from "./providerTokenStore.ts"
import { makeRateLimiter } from "./rateLimiter.ts"
import { makeRawStorage } from "./rawStorage.ts"
import { makeReplayCache } from "./replayCache.ts"
import { makeSessionStore } from "./sessionStore.ts"
import { makeShards } from "./shards.ts"
import { makeSigningKeyStore } from "./signingKeyStore.ts"
import type { StoreObject } from "./object/storeObject.ts"
import { makeTokenStore } from "./tokenStore.ts"

export type { StoreNamespace } from "./binding.ts"
export type { StoreStub } from "./protocol.ts"

/** The Durable Object backend's options: the binding, the store's name, and every backend's lifetimes and limits. */
export interface DurableOptions extends StoreOptions {
  /** The namespace bound to `StoreObject` with SQLite storage (`env.STORE`). */
  readonly namespace: StoreNamespace
  /**
   * The store's name (default `default`): its records live in the objects
   * `objectNames(name)`. Different names are separate stores (tenants), each
   * with its own objects, so each adds its own throughput.
   */
  readonly name?: string
  /**
   * How many objects hold the `RateLimiter`'s buckets and the `ReplayCache`'s
   * ids (default 1, at most 64): each key in one of them, so more shards add
   * throughput for busy limits. Choose it once: another count forgets every
   * bucket and every remembered id.
   */
  readonly primitiveShards?: number
}

/** The most `primitiveShards` a store may have. */
export const MAX_PRIMITIVE_SHARDS = 64

/** Every store the Durable Object backend provides. */
export type DurableStores = RecordStores

/** Every operation is atomic: one synchronous call to one object each. */
export const capabilities: StoreCapabilities = fullyAtomic

/**
 * The objects of the store `name`: `tokens` holds the token state, grants,
 * provider tokens, clients and the signing keys (everything `revokeGrant` and
 * the OAuth flows touch together); `sessions` holds the MCP sessions (the hot
 * path of every MCP request, and nothing it shares with the rest);
 * `primitives` the rate-limit buckets and replay ids, `primitiveShards` objects.
 */
export const objectNames = (name: string, primitiveShards = 1) => ({
  tokens: `${name}/tokens`,
  sessions: `${name}/sessions`,
  primitives: Array.from({ length: primitiveShards }, (_, i) => `${name}/primitives/${i}`)
})

/**
 * All the stores on Durable Objects of one namespace. Requires `Crypto` (the
 * `WebCrypto` layer on Workers): hashing and sealing happen here, so the
 * objects only ever hold lookup hashes and ciphertexts. The layer holds no
 * state and forks no fiber; expiry is swept inside the objects (on the calls'
 * time, and by their alarms when idle, every `sweepInterval`).
 */
export const layer = (options: DurableOptions): Layer.Layer<DurableStores, StoreError, Crypto> =>
  Layer.effectContext(make(options))

/**
 * `layer`'s work as an `Effect` (it needs no scope: nothing to release), for
 * composing by hand. `StoreError` `Invalid` for a `primitiveShards` out of range.
 */
export const make = (options: DurableOptions): Effect.Effect<Context.Context<DurableStores>, StoreError, Crypto> =>
  Effect.gen(function*() {
    const shardCount = options.primitiveShards ?? 1
    if (!Number.isInteger(shardCount) || shardCount < 1 || shardCount > MAX_PRIMITIVE_SHARDS) {
      return yield* new StoreError({
        reason: "Invalid",
        method: "DurableStore.layer",
        description: `primitiveShards must be a whole number from 1 to ${MAX_PRIMITIVE_SHARDS}`
      })
    }
    const crypto = yield* Crypto
    const tokenOptions = resolveTokenStoreOptions(options.tokens)
    const settings = {
      sweepEvery: Duration.toMillis(resolveSweepInterval(options)),
      graceWindow: tokenOptions.refreshGraceWindow
    }
    const names = objectNames(options.name ?? "default", shardCount)
    const tokens = makeChannel(options.namespace, names.tokens, settings)
    const sessions = makeChannel(options.namespace, names.sessions, settings)
    const [first, ...rest] = names.primitives.map((name) => makeChannel(options.namespace, name, settings))
    // `first` is always there (at least one shard, checked above); the fallback only satisfies the type.
    const primitives = makeShards(first === undefined ? [tokens] : [first, ...rest])

    return storesContext({
      tokens: makeTokenStore(tokens, crypto, tokenOptions),
      providerTokens: makeProviderTokenStore(tokens, crypto, options.providerTokens),
      sessions: makeSessionStore(sessions, crypto, resolveSessionStoreOptions(options.sessions)),
      clients: makeClientStore(tokens, crypto),
      signingKeys: makeSigningKeyStore(tokens, crypto),
      rateLimiter: makeRateLimiter(primitives, crypto),
      replayCache: makeReplayCache(primitives, crypto),
      raw: makeRawStorage([tokens, sessions, ...primitives.all])
    })
  })

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
): Layer.Layer<DurableStores, ConfigError.ConfigError | StoreError, Crypto> =>
  Layer.unwrapEffect(
    Effect.map(namespaceFromEnv(env, options.binding ?? "STORE"), (namespace) => layer({ ...options, namespace }))
  )

/** `layerEnv` with its options read from `Config` (default: every default). */
export const layerConfig = (
  env: object,
  config: Config.Config<DurableEnvOptions> = Config.succeed({})
): Layer.Layer<DurableStores, ConfigError.ConfigError | StoreError, Crypto> =>
  Layer.unwrapEffect(Effect.map(config, (options) => layerEnv(env, options)))

/** A Worker's binding of `StoreObject` is a `StoreNamespace` (checked when this compiles). */
export const fromNamespace = (namespace: DurableObjectNamespace<StoreObject>): StoreNamespace => namespace
