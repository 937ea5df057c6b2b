/**
 * The `StoreMaintenance` contract (and re-keying over it) on every backend
 * that provides it: memory, SQLite (a real temporary file), the encrypted
 * file, and Redis (a real `redis-server`). Cloudflare KV does not provide it
 * (no compare-and-set for the re-seal).
 */
import { afterAll } from "@effect/vitest"
import { Layer } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as FileStore from "../src/layers/file/index.ts"
import * as MemoryStore from "../src/layers/memory/index.ts"
import * as RedisStore from "../src/layers/redis/index.ts"
import * as SqliteStore from "../src/layers/sqlite/index.ts"
import { storeMaintenanceContract } from "./contract/StoreMaintenance.contract.ts"
import { cleanupPrefix, freshPrefix, useRedis } from "./support/redis.ts"

const dir = mkdtempSync(join(tmpdir(), "mcp-maintenance-test-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let files = 0
const fresh = (name: string) => join(dir, `${name}-${++files}`)

storeMaintenanceContract({ name: "memory", make: (options) => MemoryStore.layer(options) })
storeMaintenanceContract({ name: "sqlite", make: (options) => SqliteStore.layer({ ...options, filename: fresh("store.db") }) })
storeMaintenanceContract({ name: "file", make: (options) => FileStore.layer({ ...options, path: fresh("tokens.enc") }) })

const server = useRedis()
storeMaintenanceContract({
  name: "redis",
  make: (options) => {
    const keyPrefix = freshPrefix()
    const stores = RedisStore.layer({ ...options, url: server.url(), keyPrefix })
    return server.external ? Layer.merge(stores, cleanupPrefix(server.url(), keyPrefix)) : stores
  }
})
