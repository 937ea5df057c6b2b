import type { Redis } from "ioredis"
import type { RawStorage } from "../../services/RawStorage.ts"
import { type RedisClient, traced } from "./client.ts"

/** A `SCAN MATCH` pattern for keys starting with `prefix` (glob characters escaped). */
export const prefixPattern = (prefix: string): string => `${prefix.replace(/[*?[\]\\]/g, "\\$&")}*`

/** Every key under `prefix`, by `SCAN` (never `KEYS`). */
export const scanKeys = async (redis: Redis, prefix: string): Promise<Array<string>> => {
  const keys: Array<string> = []
  let cursor = "0"
  do {
    const [next, batch] = await redis.scan(cursor, "MATCH", prefixPattern(prefix), "COUNT", 1_000)
    keys.push(...batch)
    cursor = next
  } while (cursor !== "0")
  return keys
}

/** One key's contents as text: strings as stored, hashes and sorted sets as JSON. */
const render = async (redis: Redis, key: string): Promise<string | undefined> => {
  switch (await redis.type(key)) {
    case "string":
      return (await redis.get(key)) ?? undefined
    case "hash":
      return JSON.stringify(await redis.hgetall(key))
    case "zset":
      return JSON.stringify(await redis.zrange(key, 0, -1, "WITHSCORES"))
    case "none":
      return undefined
    default:
      return "(unexpected type)"
  }
}

/** `RawStorage` for Redis: every key under the prefix, with its value, as Redis holds them. */
export const makeRawStorage = (client: RedisClient): RawStorage.Service => ({
  dump: client.call("RawStorage.dump", async (redis) => {
    const keys = await scanKeys(redis, client.prefix)
    const rows = await Promise.all(keys.map(async (key) => {
      const value = await render(redis, key)
      return value === undefined ? undefined : `${key} ${value}`
    }))
    return rows.filter((row): row is string => row !== undefined)
  }).pipe(traced("RawStorage.dump"))
})
