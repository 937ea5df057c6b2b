/**
 * The memory backend: every store in process memory, with seed 000's limits
 * (1,000 pending authorizations, 10,000 token records per kind, 10,000
 * sessions, 5 per key) and O(1) LRU eviction. It also provides the
 * `McpEventBus` (this process only) and the `McpEventStore` (at most 1,000
 * streams of 100 events by default).
 */
import { Config, type ConfigError, Context, Effect, Layer, type Scope } from "effect"
import { type RecordStores, storesContext } from "../../internal/storesContext.ts"
import { type StreamServices, withRawRows } from "../../internal/streamsContext.ts"
import { forkSweeper } from "../../internal/sweeper.ts"
import { resolveSweepInterval, type StoreOptions } from "../../schema/options.ts"
import type { Crypto } from "../../services/Crypto.ts"
import { StoreMaintenance } from "../../services/StoreMaintenance.ts"
import { makeMemoryMaintenance } from "./maintenance.ts"
import { makeMemoryState } from "./state.ts"
import { makeMemoryStreams } from "./streams.ts"

/** The memory backend's options: lifetimes, limits and the sweep interval. */
export type MemoryOptions = StoreOptions

/** Every store the memory backend provides, its `StoreMaintenance`, and the MCP streaming services. */
export type MemoryStores = RecordStores | StoreMaintenance | StreamServices

/**
 * Build the stores and fork their sweep fiber (every 60 s) in the current
 * scope: for composing by hand; `layer` is this in a layer.
 */
export const make = (options: MemoryOptions = {}): Effect.Effect<Context.Context<MemoryStores>, never, Crypto | Scope.Scope> =>
  Effect.gen(function*() {
    const state = yield* makeMemoryState(options)
    const streams = yield* makeMemoryStreams(options)
    yield* forkSweeper("MemoryStore", resolveSweepInterval(options), Effect.zipWith(state.sweep, streams.sweep, (a, b) => a + b))
    return storesContext({ ...state, raw: withRawRows(state.raw, streams.dump) }).pipe(
      Context.add(StoreMaintenance, yield* makeMemoryMaintenance(state, { description: "memory" })),
      Context.merge(streams.context)
    )
  })

/**
 * All the stores in process memory, with seed 000's limits as defaults and a
 * sweep fiber (every 60 s) that lives as long as the layer. State belongs to
 * one build of the layer: two builds share nothing. Requires `Crypto` for
 * lookup hashes and for sealing provider tokens.
 */
export const layer = (options: MemoryOptions = {}): Layer.Layer<MemoryStores, never, Crypto> => Layer.scopedContext(make(options))

/** `layer` with its options read from `Config` (default: every default). */
export const layerConfig = (
  config: Config.Config<MemoryOptions> = Config.succeed({})
): Layer.Layer<MemoryStores, ConfigError.ConfigError, Crypto> => Layer.unwrapEffect(Effect.map(config, layer))
