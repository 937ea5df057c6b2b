/**
 * The Redis backend (ioredis 5): every store on one Redis, shared by any
 * number of server instances. Keys follow seed 002 behind `keyPrefix`
 * (default `mcp:`): `mcp:pending:{id}`, `mcp:code:{hash}`,
 * `mcp:refresh:{hash}`, `mcp:session:{id}`, ...
 *
 * Atomicity: `takeTransaction` is one `GETDEL`; code consumption, refresh
 * rotation, session creation with its limits, grant revocation and the
 * signing-key compare-and-set are one Lua script each. Expiry is native `PX`;
 * reads also check each record's expiry against Effect's `Clock`, and a sweep
 * fiber clears expired records from the secondary indexes.
 *
 * Failure: every command has a timeout (default 2 s); an unreachable or slow
 * Redis fails each operation with `StoreError` `Unavailable`, and operations
 * succeed again once Redis is back, without rebuilding the layer. Needs a
 * single Redis primary (replicas and Sentinel are fine; Redis Cluster is not:
 * scripts reach index keys they derive).
 *
 * It also provides the `RefreshLock` (a lease per key, taken and released by
 * compare-and-delete in one script each), so the provider-token refresher
 * refreshes once across every instance on this Redis; the `McpEventStore`
 * (a hash per stream, appends numbered by a script); and the `McpEventBus`
 * over Redis pub/sub (one channel, one subscriber connection per layer,
 * opened at the first subscription).
 */
import { Config, type ConfigError, Context, Effect, Layer, Option, type Scope } from "effect"
import { type RecordStores, storesContext } from "../../internal/storesContext.ts"
import { type StreamServices, streamsContext } from "../../internal/streamsContext.ts"
import {
  resolveMcpEventBusOptions,
  resolveMcpEventStoreOptions,
  resolveSessionStoreOptions,
  resolveSweepInterval,
  resolveTokenStoreOptions,
  type StoreOptions
} from "../../schema/options.ts"
import type { Crypto } from "../../services/Crypto.ts"
import { RefreshLock } from "../../services/RefreshLock.ts"
import type { StoreError } from "../../services/StoreError.ts"
import { StoreMaintenance } from "../../services/StoreMaintenance.ts"
import { connect, type RedisConnectionOptions } from "./client.ts"
import { makeClientStore } from "./clientStore.ts"
import * as Lua from "./lua.ts"
import { makeEventBus } from "./mcpEventBus.ts"
import { makeEventStore } from "./mcpEventStore.ts"
import { maintenanceScripts, makeMaintenance } from "./maintenance.ts"
import { makeProviderTokenStore } from "./providerTokenStore.ts"
import { makeRateLimiter } from "./rateLimiter.ts"
import { makeRawStorage } from "./rawStorage.ts"
import { makeReplayCache } from "./replayCache.ts"
import { makeRefreshLock } from "./refreshLock.ts"
import { makeSessionStore } from "./sessionStore.ts"
import { makeSigningKeyStore } from "./signingKeyStore.ts"
import { forkRedisSweeper } from "./sweep.ts"
import { makeTokenStore } from "./tokenStore.ts"

export type { RedisConnectionOptions } from "./client.ts"

/** The connection, and the lifetimes and limits every backend accepts. */
export interface RedisOptions extends RedisConnectionOptions, StoreOptions {}

/** Every store the Redis backend provides, the cross-instance `RefreshLock`, `StoreMaintenance`, and the MCP streaming services. */
export type RedisStores = RecordStores | RefreshLock | StoreMaintenance | StreamServices

/**
 * All the stores on one Redis connection, opened when the layer is built
 * (failing with `StoreError` `Unavailable` if Redis cannot be reached within
 * `connectTimeout`) and quit when it is released. Requires `Crypto`.
 */
export const layer = (options: RedisOptions = {}): Layer.Layer<RedisStores, StoreError, Crypto> =>
  Layer.scopedContext(make(options))

/** `layer`'s work in the current scope (the connection is quit when the scope closes): for composing by hand. */
export const make = (options: RedisOptions = {}): Effect.Effect<Context.Context<RedisStores>, StoreError, Crypto | Scope.Scope> =>
  Effect.gen(function*() {
    const client = yield* connect(options, [...Lua.all, ...maintenanceScripts])
    const tokens = yield* makeTokenStore(client, resolveTokenStoreOptions(options.tokens))
    const providerTokens = yield* makeProviderTokenStore(client, options.providerTokens)
    const sessions = yield* makeSessionStore(client, resolveSessionStoreOptions(options.sessions))
    const clients = yield* makeClientStore(client)
    const signingKeys = yield* makeSigningKeyStore(client)
    const refreshLock = yield* makeRefreshLock(client)
    const events = yield* makeEventStore(client, resolveMcpEventStoreOptions(options.eventStore))
    const bus = yield* makeEventBus(client, resolveMcpEventBusOptions(options.eventBus).bufferSize)
    yield* forkRedisSweeper(client, resolveSweepInterval(options))
    const rateLimiter = yield* makeRateLimiter(client)
    const replayCache = yield* makeReplayCache(client)
    return storesContext({
      tokens,
      providerTokens,
      sessions,
      clients,
      signingKeys,
      rateLimiter,
      replayCache,
      raw: makeRawStorage(client)
    }).pipe(
      Context.add(RefreshLock, refreshLock),
      Context.add(StoreMaintenance, makeMaintenance(client)),
      Context.merge(streamsContext(bus, events))
    )
  })

const optional = <A>(config: Config.Config<A>) => Config.map(Config.option(config), Option.getOrUndefined)

/**
 * The connection from the environment: `REDIS_URL`, or `REDIS_HOST`,
 * `REDIS_PORT`, `REDIS_USERNAME`, `REDIS_PASSWORD`, `REDIS_DB`, `REDIS_TLS`;
 * plus `REDIS_KEY_PREFIX` and `REDIS_COMMAND_TIMEOUT` (a duration, e.g. `2 seconds`).
 * The URL and password stay `Redacted`.
 */
export const connectionConfig: Config.Config<RedisConnectionOptions> = Config.all({
  url: optional(Config.redacted("REDIS_URL")),
  host: optional(Config.string("REDIS_HOST")),
  port: optional(Config.port("REDIS_PORT")),
  username: optional(Config.string("REDIS_USERNAME")),
  password: optional(Config.redacted("REDIS_PASSWORD")),
  db: optional(Config.integer("REDIS_DB")),
  tls: optional(Config.boolean("REDIS_TLS")),
  keyPrefix: optional(Config.string("REDIS_KEY_PREFIX")),
  commandTimeout: optional(Config.duration("REDIS_COMMAND_TIMEOUT"))
})

/** `layer` with its options read from `Config` (by default the connection from the environment). */
export const layerConfig = (
  config: Config.Config<RedisOptions> = connectionConfig
): Layer.Layer<RedisStores, StoreError | ConfigError.ConfigError, Crypto> => Layer.unwrapEffect(Effect.map(config, layer))
