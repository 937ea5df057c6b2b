/**
 * The Cloudflare Durable Object backend: every store atomic on Workers.
 * For a Worker bundle (it imports `cloudflare:workers`); code that only
 * needs the layer, or runs outside workerd, imports `./layer.ts`.
 *
 * ```ts
 * // In the Worker (this module, and the WebCrypto layer of src/layers/crypto/web.ts):
 * import * as DurableStore from "mcp-oauth-store/durable"
 * export { StoreObject } from "mcp-oauth-store/durable"  // the class the binding runs
 * // wrangler.toml: [[durable_objects.bindings]] name = "STORE", class_name = "StoreObject"
 * //                [[migrations]] tag = "v1", new_sqlite_classes = ["StoreObject"]
 * const stores = (env: object) => DurableStore.layerEnv(env).pipe(Layer.provide(WebCrypto.layerConfig))
 * ```
 *
 * **The split.** `StoreObject` (`object/`) is the code that runs inside the
 * object, on its SQLite storage (`ctx.storage.sql`, `transactionSync`): the
 * same tables and SQL steps as the SQLite backend. The layer (`layer.ts`)
 * runs wherever the Worker's code runs and provides the ports; each store
 * operation is one JS RPC call on the object's stub (`protocol.ts`). One
 * object runs one request at a time as long as no non-storage `await`
 * intervenes, and every method runs synchronously from its first read to its
 * last write, so consume, take, rotation with grace and reuse detection,
 * grant revocation, the per-key and global session limits with LRU eviction
 * and the signing-key compare-and-set are atomic however many Worker
 * isolates call at once. Hashing and sealing (`Crypto`) happen in the layer:
 * the object sees lookup hashes, envelopes and record bodies, never a bearer
 * secret, a provider token or a key.
 *
 * **Records to objects.** One store is two objects (`objectNames(name)`):
 * `{name}/tokens` with pending authorizations, codes, access and refresh
 * tokens, grants, provider tokens, clients and signing keys; and
 * `{name}/sessions` with the MCP sessions. Everything `revokeGrant` removes,
 * and everything a token lookup by hash can hit, is in one object, so
 * revocation is one transaction and a lookup needs no routing. Sessions
 * share nothing transactional with the rest and are read on every MCP
 * request, so they get their own object: the global session cap and its LRU
 * need every session in one place, which one object gives exactly. Sharding
 * further was weighed and left out: by grant, a token lookup (which knows only
 * the token's hash) could not find its object; by token hash, `revokeGrant`
 * would span objects and stop being atomic; by API key, the global cap would
 * become a per-shard one. The price is throughput: each object serializes its
 * calls. Cloudflare quotes about 1,000 requests per second per object; inside
 * the object one operation costs tens of microseconds (`bench/durable.ts`), so
 * the bound is the request rate, not SQLite. Stores under different `name`s
 * (tenants, or one per MCP server) have objects of their own and scale out.
 *
 * **Time.** The layer reads Effect's `Clock` and sends `now` with every call
 * (`CallContext`): every expiry decision is taken at the caller's time, as on
 * the other backends, and `TestClock` drives it in tests. Expired rows are
 * never served (every read filters on `now`); the object deletes them in
 * bounded batches when a call arrives and a sweep is due (`sweepInterval`,
 * caller time), and an alarm sweeps an object no one calls: its time is the
 * caller time it was planned from plus the real time elapsed since.
 *
 * **Errors.** A call that does not come back (object unreachable, reset,
 * overloaded, binding gone) is `StoreError` `Unavailable`: as with any remote
 * store, it may have been applied. A row that does not decode is `Corrupt`
 * (a rotation over a corrupt row is rolled back); a SQLite constraint is
 * `Conflict`. Failures never carry values or secrets.
 *
 * Adding a store (the `RateLimiter`, the `ReplayCache`): its steps in
 * `object/`, a migration in `object/schema.ts`, its methods in
 * `protocol.ts` and on `StoreObject`, its port over a `Channel` in the layer.
 */
import type { DurableObjectNamespace } from "@cloudflare/workers-types"
import type { StoreNamespace } from "./binding.ts"
import type { StoreObject } from "./object/storeObject.ts"

export { StoreObject } from "./object/storeObject.ts"
export {
  capabilities,
  type DurableEnvOptions,
  type DurableOptions,
  type DurableStores,
  layer,
  layerConfig,
  layerEnv,
  namespaceFromEnv,
  objectNames,
  type StoreNamespace
} from "./layer.ts"
export type { StoreStub } from "./protocol.ts"

/** A Worker's binding of `StoreObject` is a `StoreNamespace` (checked when this compiles). */
export const fromNamespace = (namespace: DurableObjectNamespace<StoreObject>): StoreNamespace => namespace
