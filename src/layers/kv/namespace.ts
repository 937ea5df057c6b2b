/**
 * What this project needs of a Cloudflare KV namespace binding, and the KV
 * rules every KV user here shares (the 60-second TTL floor, the key length
 * limit, how failures become `StoreError`s). No `node:` import: part of the
 * Workers bundle.
 */
import type { KVNamespace } from "@cloudflare/workers-types"
import { ConfigError, Effect, Option, Schema } from "effect"
import { StoreError } from "../../services/StoreError.ts"

/** One value with its metadata, as `getWithMetadata` returns it. */
export interface KvValue {
  readonly value: string | null
  readonly metadata: unknown
}

/** One key of a `list` page. */
export interface KvListKey {
  readonly name: string
  readonly metadata?: unknown
}

export type KvListPage =
  | { readonly list_complete: false; readonly keys: ReadonlyArray<KvListKey>; readonly cursor: string }
  | { readonly list_complete: true; readonly keys: ReadonlyArray<KvListKey> }

/**
 * The part of a `KVNamespace` binding the KV layers use: `getWithMetadata`
 * (one key, or up to 100 at once), `put` with `expirationTtl` and metadata,
 * `delete` and `list`. Pass the binding from the Worker's `env` (`env.TOKENS`,
 * `env.SESSIONS`) or Miniflare's `getKVNamespace`.
 */
export interface KvBinding {
  getWithMetadata(key: string): Promise<KvValue>
  getWithMetadata(keys: Array<string>): Promise<Map<string, KvValue | null>>
  put(key: string, value: string, options?: { expirationTtl?: number; metadata?: unknown }): Promise<void>
  delete(key: string): Promise<void>
  list(options?: { prefix?: string | null; cursor?: string | null; limit?: number }): Promise<KvListPage>
}

/** A real binding is a `KvBinding` (checked at compile time). */
export const fromNamespace = (namespace: KVNamespace): KvBinding => namespace

/** KV refuses `expirationTtl` below 60 seconds. */
export const MIN_TTL_SECONDS = 60

/** KV refuses keys longer than 512 bytes (UTF-8). */
export const MAX_KEY_BYTES = 512

/** `getWithMetadata` reads at most this many keys per call. */
export const MAX_BULK_GET = 100

/**
 * The `expirationTtl` for a record that expires at `expiresAt` (ms, Effect's
 * `Clock`): the remaining lifetime rounded up to whole seconds, never under
 * KV's 60-second floor. KV's TTL only frees storage: every read also checks
 * the record's own expiry, so a record clamped up to 60 s is still gone for
 * readers at its exact instant.
 */
export const kvExpirationTtl = (expiresAt: number, now: number): number =>
  Math.max(MIN_TTL_SECONDS, Math.ceil((expiresAt - now) / 1000))

const utf8 = new TextEncoder()

/** `Invalid` when a key is longer than KV accepts (client, transaction and provider ids come from callers). */
export const checkKey = (method: string, key: string): Effect.Effect<void, StoreError> =>
  utf8.encode(key).length <= MAX_KEY_BYTES ? Effect.void : Effect.fail(
    new StoreError({ reason: "Invalid", method, description: `key longer than KV's ${MAX_KEY_BYTES} bytes` })
  )

/** Keep only the name and message of a failure: nothing the binding attached to it. */
const sanitize = (error: unknown): Error => {
  if (!(error instanceof Error)) return new Error("KV call failed")
  const clean = new Error(error.message)
  clean.name = error.name
  return clean
}

/** Run one binding call; any failure is `Unavailable`. */
export const kvCall = <A>(method: string, f: () => Promise<A>): Effect.Effect<A, StoreError> =>
  Effect.tryPromise({
    try: f,
    catch: (error) =>
      new StoreError({ reason: "Unavailable", method, description: "Cloudflare KV call failed", cause: sanitize(error) })
  })

/**
 * What the layers keep beside each value, as KV metadata (plaintext, no
 * secrets, well under KV's 1,024-byte limit): `e` the expiry instant (ms,
 * Effect's `Clock`; absent: never expires); for sessions `a` last access, `c`
 * creation and `k` the API-key hash; for the signing key set `v` its version.
 */
export const Meta = Schema.Struct({
  e: Schema.optional(Schema.Number),
  a: Schema.optional(Schema.Number),
  c: Schema.optional(Schema.Number),
  k: Schema.optional(Schema.String),
  v: Schema.optional(Schema.Number)
})
export type Meta = typeof Meta.Type

const decodeMeta = Schema.decodeUnknownOption(Meta)

/** Metadata as stored; `None` when it is not ours (a value written by something else). */
export const readMeta = (metadata: unknown): Option.Option<Meta> =>
  metadata === null || metadata === undefined ? Option.some({}) : decodeMeta(metadata)

/** Live strictly before its expiry instant, like every other record. */
export const isLiveMeta = (meta: Meta, now: number): boolean => meta.e === undefined || now < meta.e

/** Every key under `prefix`, page by page. */
export const listAll = (
  binding: KvBinding,
  method: string,
  prefix: string
): Effect.Effect<ReadonlyArray<KvListKey>, StoreError> =>
  Effect.gen(function*() {
    const keys: Array<KvListKey> = []
    let cursor: string | null = null
    while (true) {
      const page: KvListPage = yield* kvCall(method, () => binding.list({ prefix, cursor }))
      keys.push(...page.keys)
      if (page.list_complete) return keys
      cursor = page.cursor
    }
  })

const isKvBinding = (value: unknown): value is KvBinding =>
  typeof value === "object" && value !== null &&
  ["getWithMetadata", "put", "delete", "list"].every((name) => typeof Reflect.get(value, name) === "function")

/**
 * The KV namespace bound as `name` in a Worker's `env`: `MissingData` when
 * there is none, `InvalidData` when it is something else.
 */
export const bindingFromEnv = (env: object, name: string): Effect.Effect<KvBinding, ConfigError.ConfigError> => {
  const value: unknown = Reflect.get(env, name)
  if (value === undefined) {
    return Effect.fail(ConfigError.MissingData([name], `no KV namespace is bound as ${name} (wrangler.toml [[kv_namespaces]])`))
  }
  return isKvBinding(value)
    ? Effect.succeed(value)
    : Effect.fail(ConfigError.InvalidData([name], `${name} is not a KV namespace binding`))
}
