import { Context, Effect } from "effect"
import { McpEventBus } from "../services/McpEventBus.ts"
import { McpEventStore } from "../services/McpEventStore.ts"
import type { RawStorage } from "../services/RawStorage.ts"
import type { StoreError } from "../services/StoreError.ts"

/** The MCP streaming services a backend provides beside its record stores (every backend but KV). */
export type StreamServices = McpEventBus | McpEventStore

/** One backend's change-event bus and resumable-stream store, as the context its layer provides. */
export const streamsContext = (bus: McpEventBus.Service, events: McpEventStore.Service): Context.Context<StreamServices> =>
  Context.make(McpEventBus, bus).pipe(Context.add(McpEventStore, events))

/** `raw` followed by more rows (a backend's event-store records kept beside its record stores). */
export const withRawRows = (
  raw: RawStorage.Service,
  rows: Effect.Effect<ReadonlyArray<string>, StoreError>
): RawStorage.Service => ({
  dump: Effect.zipWith(raw.dump, rows, (a, b) => [...a, ...b])
})
