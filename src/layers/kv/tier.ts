import { Clock, Effect, Either, Metric, Option, type Schema } from "effect"
import { LruMap } from "../../internal/lruMap.ts"
import { open, seal } from "../../internal/sealed.ts"
import type { Crypto } from "../../services/Crypto.ts"
import { StoreError } from "../../services/StoreError.ts"
import { kvWriteFailures } from "../../internal/metrics.ts"
import type { KvHealth } from "./health.ts"
import {
  checkKey,
  isLiveMeta,
  type KvBinding,
  kvCall,
  kvExpirationTtl,
  listAll,
  MAX_BULK_GET,
  type Meta,
  readMeta
} from "./namespace.ts"

/** A stored value and its metadata. */
export interface Entry {
  readonly value: string
  readonly meta: Meta
}

/** A key found by `list` (without the layer's prefix), with its metadata. */
export interface Listed {
  readonly key: string
  readonly meta: Meta
}

/**
 * Every read and write of the KV stores goes through here: KV under the
 * layer's key prefix, plus seed 000's write-through memory fallback.
 *
 * - `put` writes to KV (with `expirationTtl` from the record's expiry,
 *   clamped to KV's 60-second floor). When KV refuses the write (quota, rate
 *   limit, outage), the value is kept in this instance's memory instead, the
 *   failure logged (method and record kind, never the key's secret part or
 *   the value) and counted, and the put succeeds. A later successful write of
 *   the key drops the memory copy.
 * - `get` reads memory first (only those memory-only records), then KV, and
 *   treats a record past its expiry (by Effect's `Clock`) as missing.
 * - `delete` removes both copies; a KV delete that fails is an error (a
 *   removal kept only in memory would leave the record live for every other
 *   instance).
 *
 * Memory holds only what KV does not: a memory copy of a record KV accepted
 * would go stale as soon as another instance changed it (a revoked token
 * would stay valid here).
 */
export interface KvTier {
  readonly get: (method: string, key: string) => Effect.Effect<Option.Option<Entry>, StoreError>
  /** Live entries of several keys (bulk reads of up to 100 keys per KV call). */
  readonly getMany: (method: string, keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyMap<string, Entry>, StoreError>
  readonly put: (method: string, key: string, value: string, meta: Meta) => Effect.Effect<void, StoreError>
  readonly delete: (method: string, key: string) => Effect.Effect<void, StoreError>
  /** Every key under `prefix`, expired or not (callers filter with `isLiveMeta`). */
  readonly list: (method: string, prefix: string) => Effect.Effect<ReadonlyArray<Listed>, StoreError>
  /**
   * Remove expired records: memory-only ones, and with `kv` every expired key
   * in KV too, plus the keys `related` names for each (index entries that
   * outlive their record's expiry). Runs under the dump lock.
   */
  readonly sweep: (
    related: (key: string, meta: Meta) => ReadonlyArray<string>,
    kv: boolean
  ) => Effect.Effect<number, StoreError>
  /** Every key under the prefix with its value and metadata, and every memory-only record. */
  readonly dump: Effect.Effect<ReadonlyArray<string>, StoreError>
  readonly health: KvHealth.Service
  /** Read and open a sealed record. */
  readonly read: <A, I>(method: string, schema: Schema.Schema<A, I>, key: string) => Effect.Effect<Option.Option<A>, StoreError>
  /** Seal and write a record. */
  readonly write: <A, I>(method: string, schema: Schema.Schema<A, I>, key: string, value: A, meta: Meta) => Effect.Effect<void, StoreError>
}

export interface KvTierOptions {
  readonly binding: KvBinding
  readonly keyPrefix: string
  /** Memory-only records kept at most (least recently written dropped first). */
  readonly maxMemoryOnly: number
}

const corrupt = (method: string) =>
  new StoreError({ reason: "Corrupt", method, description: "KV metadata is not this store's" })

/** The namespace part of a record key, for logs: `code`, `session`, ... */
const kind = (key: string): string => key.slice(0, Math.max(0, key.indexOf(":")))

const chunks = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size))

export const makeTier = (crypto: Crypto.Service, options: KvTierOptions): KvTier => {
  const { binding, keyPrefix: prefix } = options
  const memoryOnly = new LruMap<string, Entry>()
  const dumpLock = Effect.unsafeMakeSemaphore(1)
  let writeFailures = 0

  const entryOf = (method: string, stored: { readonly value: string | null; readonly metadata: unknown } | null) => {
    if (stored === null || stored.value === null) return Effect.succeed(Option.none<Entry>())
    const meta = readMeta(stored.metadata)
    return Option.isNone(meta)
      ? Effect.fail(corrupt(method))
      : Effect.succeed(Option.some<Entry>({ value: stored.value, meta: meta.value }))
  }

  /** The memory-only copy when it is live; an expired one is dropped (its KV copy, if any, is older). */
  const fromMemory = (key: string, now: number): Entry | "expired" | undefined => {
    const entry = memoryOnly.get(key)
    if (entry === undefined) return undefined
    if (isLiveMeta(entry.meta, now)) return entry
    memoryOnly.delete(key)
    return "expired"
  }

  const get = (method: string, key: string) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const memory = fromMemory(key, now)
      if (memory === "expired") return Option.none()
      if (memory !== undefined) return Option.some(memory)
      const stored = yield* kvCall(method, () => binding.getWithMetadata(prefix + key))
      return Option.filter(yield* entryOf(method, stored), (entry) => isLiveMeta(entry.meta, now))
    })

  const getMany = (method: string, keys: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const found = new Map<string, Entry>()
      const fromKv: Array<string> = []
      for (const key of new Set(keys)) {
        const memory = fromMemory(key, now)
        if (memory === undefined) fromKv.push(key)
        else if (memory !== "expired") found.set(key, memory)
      }
      for (const chunk of chunks(fromKv, MAX_BULK_GET)) {
        const stored = yield* kvCall(method, () => binding.getWithMetadata(chunk.map((key) => prefix + key)))
        for (const key of chunk) {
          const entry = yield* entryOf(method, stored.get(prefix + key) ?? null)
          if (Option.isSome(entry) && isLiveMeta(entry.value.meta, now)) found.set(key, entry.value)
        }
      }
      return found
    })

  const put = (method: string, key: string, value: string, meta: Meta) =>
    Effect.gen(function*() {
      yield* checkKey(method, prefix + key)
      const now = yield* Clock.currentTimeMillis
      const putOptions = meta.e === undefined
        ? { metadata: meta }
        : { metadata: meta, expirationTtl: kvExpirationTtl(meta.e, now) }
      const written = yield* Effect.either(kvCall(method, () => binding.put(prefix + key, value, putOptions)))
      if (Either.isRight(written)) {
        memoryOnly.delete(key)
        return
      }
      writeFailures++
      memoryOnly.set(key, { value, meta })
      while (memoryOnly.size > options.maxMemoryOnly) memoryOnly.evictOldest()
      yield* Metric.increment(kvWriteFailures)
      yield* Effect.logWarning("KV write failed: the record is kept in this instance's memory").pipe(
        Effect.annotateLogs({
          module: "KvStore",
          method,
          record: kind(key),
          error: written.left.cause instanceof Error ? written.left.cause.message : "unknown"
        })
      )
    })

  const remove = (method: string, key: string) =>
    Effect.suspend(() => {
      memoryOnly.delete(key)
      return kvCall(method, () => binding.delete(prefix + key))
    })

  const listed = (name: string, metadata: unknown): Listed => ({
    key: name.slice(prefix.length),
    meta: Option.getOrElse(readMeta(metadata), () => ({}))
  })

  const list = (method: string, keyPrefix: string) =>
    Effect.gen(function*() {
      const keys = yield* listAll(binding, method, prefix + keyPrefix)
      const merged = new Map<string, Listed>()
      for (const key of keys) merged.set(key.name, listed(key.name, key.metadata))
      for (const [key, entry] of memoryOnly.entries()) {
        if (key.startsWith(keyPrefix)) merged.set(prefix + key, { key, meta: entry.meta })
      }
      return [...merged.values()]
    })

  const sweep = (related: (key: string, meta: Meta) => ReadonlyArray<string>, kv: boolean) =>
    dumpLock.withPermits(1)(Effect.gen(function*() {
      const method = "KvStore.sweep"
      const doomed = new Set<string>()
      const memoryNow = yield* Clock.currentTimeMillis
      for (const [key, entry] of memoryOnly.entries()) {
        if (!isLiveMeta(entry.meta, memoryNow)) for (const k of [key, ...related(key, entry.meta)]) doomed.add(k)
      }
      let removed = doomed.size
      for (const key of doomed) memoryOnly.delete(key)
      if (!kv) return removed
      const keys = yield* listAll(binding, method, prefix)
      // The time is read after the listing: a test clock moved while the list was in flight still counts.
      const now = yield* Clock.currentTimeMillis
      for (const { key, meta } of keys.map((k) => listed(k.name, k.metadata))) {
        if (isLiveMeta(meta, now)) continue
        removed++
        for (const k of [key, ...related(key, meta)]) doomed.add(k)
      }
      yield* Effect.forEach(doomed, (key) => remove(method, key), { concurrency: 8, discard: true })
      return removed
    }))

  const dump = dumpLock.withPermits(1)(Effect.gen(function*() {
    const method = "RawStorage.dump"
    const keys = yield* listAll(binding, method, prefix)
    const rows: Array<string> = []
    for (const chunk of chunks(keys, MAX_BULK_GET)) {
      const stored = yield* kvCall(method, () => binding.getWithMetadata(chunk.map((key) => key.name)))
      for (const key of chunk) {
        const entry = stored.get(key.name)
        if (entry === null || entry === undefined || entry.value === null) continue
        rows.push(`${key.name} ${entry.value} ${JSON.stringify(entry.metadata)}`)
      }
    }
    for (const [key, entry] of memoryOnly.entries()) {
      rows.push(`memory-only ${prefix}${key} ${entry.value} ${JSON.stringify(entry.meta)}`)
    }
    return rows
  }))

  return {
    get,
    getMany,
    put,
    delete: remove,
    list,
    sweep,
    dump,
    health: {
      writeFailures: Effect.sync(() => writeFailures),
      memoryOnly: Effect.sync(() => memoryOnly.size)
    },
    read: (method, schema, key) =>
      Effect.flatMap(get(method, key), (entry) =>
        Option.isNone(entry)
          ? Effect.succeed(Option.none())
          : Effect.map(open(crypto, schema, entry.value.value, key, method), Option.some)),
    write: (method, schema, key, value, meta) =>
      Effect.flatMap(seal(crypto, schema, value, key, method), (sealed) => put(method, key, sealed, meta))
  }
}
