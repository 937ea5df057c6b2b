/**
 * `mcp-oauth-store/kv`: every store on one Cloudflare KV namespace, and a
 * `CacheAdapter` on KV for the tiered session store. No Node built-in: pair it
 * with `mcp-oauth-store/crypto/web` in a Worker.
 */
export * as KvStore from "../layers/kv/index.ts"
export * as KvCache from "../layers/tiered/kvCache.ts"
