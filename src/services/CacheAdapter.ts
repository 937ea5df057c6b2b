import { Context, type Effect, type Option } from "effect"
import type { StoreError } from "./StoreError.ts"

/**
 * A string cache in front of a durable store: seed 001's `CacheAdapter`
 * (`get`, `set(key, value, ttl?)`, `delete`) as Effects. Values are opaque to
 * the adapter (the tiered store seals them before they get here); a missing
 * or expired key is `None`. `ttlSeconds` is the entry's lifetime; without it
 * the entry lives until deleted or evicted.
 *
 * Implementations: memory (per instance), Cloudflare KV and Redis (shared by
 * every instance), in `src/layers/tiered/`.
 */
export class CacheAdapter extends Context.Tag("mcp-oauth-store/CacheAdapter")<CacheAdapter, CacheAdapter.Service>() {}

export declare namespace CacheAdapter {
  export interface Service {
    readonly get: (key: string) => Effect.Effect<Option.Option<string>, StoreError>
    readonly set: (key: string, value: string, ttlSeconds?: number) => Effect.Effect<void, StoreError>
    readonly delete: (key: string) => Effect.Effect<void, StoreError>
  }
}
