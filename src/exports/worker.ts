/**
 * `mcp-oauth-store/worker`: the server as a Cloudflare Worker. `McpWorker.make({ tools })`
 * is the main module's default export (its `fetch` handler: the OAuth
 * authorization server and `/mcp`, on `WebCrypto` and the Durable Object
 * backend, configured from the Worker's vars, secrets and bindings);
 * `StoreObject` is the Durable Object class to export beside it. For a Worker
 * only: it imports `cloudflare:workers` and no Node built-in.
 */
export * as McpWorker from "../worker/McpWorker.ts"
/**
 * The Durable Object class the `STORE` binding runs: export it from the
 * Worker's main module, and bind it with SQLite storage
 * (`new_sqlite_classes = ["StoreObject"]` in `wrangler.toml`).
 */
export { StoreObject } from "../layers/durable/object/storeObject.ts"
