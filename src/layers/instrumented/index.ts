/**
 * Metrics for any backend, opt-in: `instrument(layer, { backend })` provides
 * the same services as `layer`, each store's methods wrapped with metric
 * recording (calls, latency, errors by `StoreError` reason, and the outcomes
 * their results show). The backends themselves record nothing, so a server
 * that does not instrument its stores pays nothing for metrics.
 *
 * ```ts
 * const Stores = Metrics.instrument(SqliteStore.layer({ filename }), { backend: "sqlite" }).pipe(
 *   // Instrument Crypto before the stores are built over it, to count decrypt failures inside them too:
 *   Layer.provideMerge(Metrics.instrument(NodeCrypto.layerConfig(), { backend: "sqlite" }))
 * )
 * ```
 */
import { type Clock, Context, Effect, Layer, Option } from "effect"
import { ClientStore } from "../../services/ClientStore.ts"
import { Crypto } from "../../services/Crypto.ts"
import { McpEventBus } from "../../services/McpEventBus.ts"
import { McpEventStore } from "../../services/McpEventStore.ts"
import { ProviderTokenStore } from "../../services/ProviderTokenStore.ts"
import { RateLimiter } from "../../services/RateLimiter.ts"
import { RefreshLock } from "../../services/RefreshLock.ts"
import { ReplayCache } from "../../services/ReplayCache.ts"
import { SessionStore } from "../../services/SessionStore.ts"
import { SigningKeyStore } from "../../services/SigningKeyStore.ts"
import { TokenStore } from "../../services/TokenStore.ts"
import { makeRecorder, type Recorder } from "./recorder.ts"
import {
  instrumentClientStore,
  instrumentCrypto,
  instrumentMcpEventBus,
  instrumentMcpEventStore,
  instrumentProviderTokenStore,
  instrumentRateLimiter,
  instrumentRefreshLock,
  instrumentReplayCache,
  instrumentSessionStore,
  instrumentSigningKeyStore,
  instrumentTokenStore,
  isInstrumented
} from "./stores.ts"

/** How the instrumented stores label their series. */
export interface InstrumentOptions {
  /** The `backend` label: which backend the stores are (`memory`, `sqlite`, `redis`, ...). Never a credential or a path. */
  readonly backend: string
}

type Wrap = (context: Context.Context<never>, recorder: Recorder) => Context.Context<never>

/** Replace the service of `tag` in `context` with its instrumented version, when it is there and not instrumented yet. */
const replace = <I, S extends object>(tag: Context.Tag<I, S>, wrap: (service: S, recorder: Recorder) => S): Wrap => (context, recorder) => {
  const found = Context.getOption(context, tag)
  return Option.isSome(found) && !isInstrumented(found.value) ? Context.add(context, tag, wrap(found.value, recorder)) : context
}

/** Every service the instrumentation knows. */
const wrappers: ReadonlyArray<Wrap> = [
  replace(TokenStore, instrumentTokenStore),
  replace(SessionStore, instrumentSessionStore),
  replace(ProviderTokenStore, instrumentProviderTokenStore),
  replace(ClientStore, instrumentClientStore),
  replace(SigningKeyStore, instrumentSigningKeyStore),
  replace(RateLimiter, instrumentRateLimiter),
  replace(ReplayCache, instrumentReplayCache),
  replace(RefreshLock, instrumentRefreshLock),
  replace(McpEventStore, instrumentMcpEventStore),
  replace(McpEventBus, instrumentMcpEventBus),
  replace(Crypto, instrumentCrypto)
]

/**
 * The context with every store service it holds (`TokenStore`,
 * `SessionStore`, `ProviderTokenStore`, `ClientStore`, `SigningKeyStore`,
 * `RateLimiter`, `ReplayCache`, `RefreshLock`, `McpEventStore`,
 * `McpEventBus`, and `Crypto`'s decrypt) instrumented; other services pass
 * through. Durations are read from `clock`.
 */
export const instrumentContext = <A>(context: Context.Context<A>, clock: Clock.Clock, options: InstrumentOptions): Context.Context<A> => {
  const recorder = makeRecorder(clock, options.backend)
  const replaced = wrappers.reduce<Context.Context<never>>((acc, wrap) => wrap(acc, recorder), context)
  return Context.merge(context, replaced)
}

/**
 * `layer` with its store services instrumented (see `instrumentContext`).
 * Instrumenting twice wraps once. To count decrypt failures inside the
 * stores too, instrument the layer that provides `Crypto` before the stores
 * are built over it.
 */
export const instrument = <A, E, R>(layer: Layer.Layer<A, E, R>, options: InstrumentOptions): Layer.Layer<A, E, R> =>
  Layer.flatMap(layer, (context) => Layer.effectContext(Effect.map(Effect.clock, (clock) => instrumentContext(context, clock, options))))
