/**
 * `mcp-oauth-store/tiered`: a `SessionStore` that reads through a
 * `CacheAdapter` (memory here; `KvCache` in `/kv`, `RedisCache` in `/redis`)
 * in front of a durable backend's `SessionStore` (seed 001).
 */
export * as TieredStore from "../layers/tiered/index.ts"
export * as MemoryCache from "../layers/tiered/memoryCache.ts"
