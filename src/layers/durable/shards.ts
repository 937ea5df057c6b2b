import type { Channel } from "./binding.ts"

/** FNV-1a over the key's UTF-16 code units: cheap, stable across runtimes and releases. */
const fnv1a = (text: string): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}

/**
 * The objects that hold the `RateLimiter`'s buckets and the `ReplayCache`'s
 * ids: each storage key lives in exactly one of them (by a stable hash of the
 * key), so every bucket's and every id's steps stay in one object, atomic,
 * while different keys spread over the shards' throughput.
 */
export interface Shards {
  readonly all: ReadonlyArray<Channel>
  /** The shard that holds `storageKey`. */
  readonly of: (storageKey: string) => Channel
}

/** Shards over `channels` (at least one). */
export const makeShards = (channels: readonly [Channel, ...Array<Channel>]): Shards => ({
  all: channels,
  of: (storageKey) => channels[fnv1a(storageKey) % channels.length] ?? channels[0]
})
