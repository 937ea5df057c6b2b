/**
 * `mcp-oauth-store/redis`: every store on one Redis (`ioredis` 5, an optional
 * peer dependency), shared by any number of server instances; and a
 * `CacheAdapter` on Redis for the tiered session store.
 */
export * as RedisStore from "../layers/redis/index.ts"
export * as RedisCache from "../layers/tiered/redisCache.ts"
