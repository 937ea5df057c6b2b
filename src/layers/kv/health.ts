import { Context, type Effect } from "effect"

/**
 * How the KV layer's write-through fallback is doing, for this instance: KV
 * writes that failed (each one logged as a warning and kept in memory
 * instead), and how many records only memory holds right now.
 */
export class KvHealth extends Context.Tag("mcp-oauth-store/KvHealth")<KvHealth, KvHealth.Service>() {}

export declare namespace KvHealth {
  export interface Service {
    /** KV writes that failed since the layer was built. */
    readonly writeFailures: Effect.Effect<number>
    /** Records held only in memory (their KV write failed and no later write succeeded). */
    readonly memoryOnly: Effect.Effect<number>
  }
}
