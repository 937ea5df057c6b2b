import { type Context, Effect, type Scope } from "effect"
import { makeLocalEventBus } from "../../internal/localEventBus.ts"
import { type StreamServices, streamsContext } from "../../internal/streamsContext.ts"
import { resolveMcpEventBusOptions, resolveMcpEventStoreOptions, type StoreOptions } from "../../schema/options.ts"
import type { Crypto } from "../../services/Crypto.ts"
import type { StoreError } from "../../services/StoreError.ts"
import { makeEventStore } from "./mcpEventStore.ts"

/** The in-process `McpEventBus` and the memory `McpEventStore`, with what the backend's layer needs around them. */
export interface MemoryStreams {
  readonly context: Context.Context<StreamServices>
  /** Remove expired streams; the number removed. */
  readonly sweep: Effect.Effect<number>
  /** The streams as held, for `RawStorage`. */
  readonly dump: Effect.Effect<ReadonlyArray<string>, StoreError>
}

/**
 * The MCP streaming services in process memory: the memory, file and SQLite
 * backends' bus (this process only), and the memory and file backends' event
 * store (never persisted). The bus is shut down when the scope closes.
 */
export const makeMemoryStreams = (options: StoreOptions = {}): Effect.Effect<MemoryStreams, never, Crypto | Scope.Scope> =>
  Effect.gen(function*() {
    const bus = yield* makeLocalEventBus(resolveMcpEventBusOptions(options.eventBus).bufferSize)
    const events = yield* makeEventStore(resolveMcpEventStoreOptions(options.eventStore))
    return { context: streamsContext(bus.service, events.service), sweep: events.sweep, dump: events.dump }
  })
