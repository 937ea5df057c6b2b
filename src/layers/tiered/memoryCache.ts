import { Clock, Effect, Layer, Option } from "effect"
import { LruMap } from "../../internal/lruMap.ts"
import { CacheAdapter } from "../../services/CacheAdapter.ts"

/** The memory cache's bound. */
export interface MemoryCacheOptions {
  /** Entries kept at most, least recently used dropped first (default 10,000). */
  readonly maxEntries?: number
}

interface Entry {
  readonly value: string
  readonly expiresAt: number
}

/**
 * A `CacheAdapter` in this process's memory: an LRU map, each entry expiring
 * by Effect's `Clock`. Per instance: nothing is shared with other instances.
 */
export const make = (options: MemoryCacheOptions = {}): CacheAdapter.Service => {
  const maxEntries = options.maxEntries ?? 10_000
  const entries = new LruMap<string, Entry>()
  return {
    get: (key) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const entry = entries.get(key)
        if (entry === undefined) return Option.none()
        if (now >= entry.expiresAt) {
          entries.delete(key)
          return Option.none()
        }
        entries.promote(key)
        return Option.some(entry.value)
      }),
    set: (key, value, ttlSeconds) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        entries.set(key, { value, expiresAt: ttlSeconds === undefined ? Infinity : now + ttlSeconds * 1000 })
        while (entries.size > maxEntries) entries.evictOldest()
      }),
    delete: (key) => Effect.sync(() => void entries.delete(key))
  }
}

/** A fresh memory cache per build of the layer. */
export const layer = (options: MemoryCacheOptions = {}): Layer.Layer<CacheAdapter> =>
  Layer.sync(CacheAdapter, () => make(options))
