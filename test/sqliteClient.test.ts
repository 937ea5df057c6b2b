import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { afterAll } from "@effect/vitest"
import { Layer } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import { SqliteStore } from "../src/exports/sqlite.ts"
import { storeContract, type StoreOptions } from "./contract/index.ts"

// The stores on a SqlClient the application owns (`layerClient`): every statement through `@effect/sql`, each
// store step one Effect per statement (not the owned connection's one-step programs), against the same contract.
const dir = mkdtempSync(join(tmpdir(), "mcp-sqlite-client-test-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let files = 0

storeContract({
  name: "sqlite (layerClient)",
  make: (options?: StoreOptions) =>
    SqliteStore.layerClient(options).pipe(
      Layer.provideMerge(NodeCrypto.layerEphemeral),
      Layer.provide(SqliteClient.layer({ filename: join(dir, `store-${++files}.db`) }))
    )
})
