/**
 * `mcp-oauth-store/durable`: every store on Cloudflare Durable Objects with
 * SQLite storage, every operation atomic. For a Worker: it imports
 * `cloudflare:workers` (for `StoreObject`) and no Node built-in; pair it with
 * `mcp-oauth-store/crypto/web`.
 */
export * as DurableStore from "../layers/durable/index.ts"
/**
 * The Durable Object class the store's binding runs: export it from your
 * Worker's main module, and bind it with SQLite storage
 * (`new_sqlite_classes = ["StoreObject"]` in `wrangler.toml`).
 */
export { StoreObject } from "../layers/durable/object/storeObject.ts"
