import { Effect } from "effect"

/**
 * One mutex per key, inside one process: effects run under the same key one
 * at a time, effects under different keys run freely. Entries exist only
 * while someone holds or waits for them.
 *
 * This serializes the read-check-write steps of a backend that has no atomic
 * primitive (Cloudflare KV) within one instance; it does nothing across
 * instances.
 */
export interface KeyedLock {
  readonly withLock: (key: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

interface Entry {
  readonly semaphore: Effect.Semaphore
  users: number
}

export const makeKeyedLock = (): KeyedLock => {
  const entries = new Map<string, Entry>()
  const acquire = (key: string) =>
    Effect.sync(() => {
      let entry = entries.get(key)
      if (entry === undefined) {
        entry = { semaphore: Effect.unsafeMakeSemaphore(1), users: 0 }
        entries.set(key, entry)
      }
      entry.users++
      return entry
    })
  const release = (key: string, entry: Entry) =>
    Effect.sync(() => {
      entry.users--
      if (entry.users === 0) entries.delete(key)
    })
  return {
    withLock: (key) => (effect) =>
      Effect.acquireUseRelease(acquire(key), (entry) => entry.semaphore.withPermits(1)(effect), (entry) => release(key, entry))
  }
}
