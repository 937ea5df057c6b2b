/**
 * The SQLite `McpEventStore` beyond its contract (run in `sqlite.test.ts`):
 * appends from two OS processes on one file, what the file holds, a moved
 * envelope, and the migration on a database created before the event store.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Cause, Effect, Exit, Layer, Option, Redacted } from "effect"
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import { SqliteStore } from "../src/exports/sqlite.ts"
import { generateKey } from "../src/layers/crypto/keyring.ts"
import { McpEventStore } from "../src/services/McpEventStore.ts"
import { StoreError } from "../src/services/StoreError.ts"

const dir = mkdtempSync(join(tmpdir(), "mcp-sqlite-streams-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let files = 0
const freshFile = () => join(dir, `store-${++files}.db`)

const storesOn = (filename: string, key: Redacted.Redacted<string>) =>
  SqliteStore.layer({ sweepInterval: "1 day", filename }).pipe(
    Layer.provideMerge(Layer.orDie(NodeCrypto.layer({ activeKey: key })))
  )

const using = <ROut, E>(layer: Layer.Layer<ROut, E>) => <A, E2>(body: Effect.Effect<A, E2, ROut>) =>
  Effect.scoped(Effect.provide(body, Layer.fresh(layer)))

const OWNER = "sub:user-1|client:client-1"

/** Start `labels.length` racer processes appending `count` messages each to the stream, release them together. */
const race = async (filename: string, key: Redacted.Redacted<string>, streamId: string, count: number, labels: ReadonlyArray<string>) => {
  const here = fileURLToPath(new URL(".", import.meta.url))
  const fixture = join(here, "fixtures", "sqlite-stream-race.ts")
  const children = labels.map((label) =>
    spawn(process.execPath, ["--import", "tsx", fixture, filename, streamId, String(count), label], {
      cwd: join(here, ".."),
      env: { ...process.env, RACE_KEY: Redacted.value(key) },
      stdio: ["pipe", "pipe", "inherit"]
    }))
  const outputs = children.map((child) => {
    const lines = createInterface({ input: child.stdout })
    const all: Array<string> = []
    const ready = new Promise<void>((resolve, reject) => {
      lines.on("line", (line) => {
        all.push(line)
        if (line === "ready") resolve()
      })
      child.once("exit", (code) => reject(new Error(`racer exited with ${code} before it was ready`)))
    })
    const done = new Promise<{ readonly ids?: ReadonlyArray<string>; readonly error?: string }>((resolve, reject) =>
      child.once("exit", (code) =>
        code === 0 ? resolve(JSON.parse(all[all.length - 1] ?? "{}")) : reject(new Error(`racer exited with ${code}`))
      )
    )
    return { ready, done }
  })
  try {
    await Promise.all(outputs.map((o) => o.ready))
    for (const child of children) child.stdin.write("go\n")
    return await Promise.all(outputs.map((o) => o.done))
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill()
  }
}

describe("sqlite: McpEventStore", () => {
  it.live("two OS processes appending to one stream: 100 distinct sequence numbers 1..100, replayed in order", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      const key = yield* generateKey
      const streamId = yield* using(storesOn(filename, key))(Effect.flatMap(McpEventStore, (store) => store.openStream(OWNER)))
      const outcomes = yield* Effect.promise(() => race(filename, key, streamId, 50, ["a", "b"]))
      for (const outcome of outcomes) expect(outcome.error).toBeUndefined()
      const sent = new Map<string, string>()
      outcomes.forEach((outcome, racer) =>
        (outcome.ids ?? []).forEach((id, i) => sent.set(id, `${racer === 0 ? "a" : "b"}-${i}`))
      )
      expect(sent.size).toBe(100)
      const sequences = [...sent.keys()].map((id) => Number(id.slice(streamId.length + 1))).sort((x, y) => x - y)
      expect(sequences).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))

      yield* using(storesOn(filename, key))(Effect.gen(function*() {
        const replay = Option.getOrThrow(yield* (yield* McpEventStore).replay(`${streamId}.0`, OWNER))
        expect(replay.truncated).toBe(false)
        expect(replay.events.map((e) => e.id)).toEqual(sequences.map((n) => `${streamId}.${n}`))
        for (const event of replay.events) expect(event.message).toBe(sent.get(event.id))
      }))
    }), 60_000)

  it.effect("the file and its WAL hold no message and no owner in the clear", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      const key = yield* generateKey
      const secret = "tool-result-s3cr3t-payload"
      yield* using(storesOn(filename, key))(Effect.gen(function*() {
        const store = yield* McpEventStore
        const streamId = yield* store.openStream(OWNER)
        for (let i = 0; i < 5; i++) yield* store.append(streamId, JSON.stringify({ jsonrpc: "2.0", id: i, result: { secret } }))
      }))
      const bytes = Buffer.concat([filename, `${filename}-wal`].filter(existsSync).map((path) => readFileSync(path)))
      expect(bytes.includes(secret)).toBe(false)
      expect(bytes.includes("user-1")).toBe(false)
      expect(bytes.includes("client-1")).toBe(false)
    }))

  it.effect("an envelope moved to another stream does not open: DecryptFailed, never another stream's message", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      const key = yield* generateKey
      const [a, b] = yield* using(storesOn(filename, key))(Effect.gen(function*() {
        const store = yield* McpEventStore
        const a = yield* store.openStream(OWNER)
        const b = yield* store.openStream(OWNER)
        yield* store.append(a, "message of a")
        yield* store.append(b, "message of b")
        return [a, b] as const
      }))
      const db = new Database(filename)
      db.prepare(`UPDATE mcp_stream_events SET envelope = (SELECT envelope FROM mcp_stream_events WHERE stream_id = ?)
        WHERE stream_id = ?`).run(a, b)
      db.close()
      const exit = yield* using(storesOn(filename, key))(Effect.exit(Effect.flatMap(McpEventStore, (store) => store.replay(`${b}.0`, OWNER))))
      const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
      expect(Option.isSome(error) && error.value instanceof StoreError && error.value.reason).toBe("DecryptFailed")
    }))

  it.effect("a database created before the event store gets its tables on the next start", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      const key = yield* generateKey
      yield* using(storesOn(filename, key))(Effect.void)
      // back to the schema before the event store's migration (and the later one)
      const db = new Database(filename)
      db.exec(
        "DROP TABLE mcp_streams; DROP TABLE mcp_stream_events; DROP INDEX mcp_clients_expires_at; " +
          "ALTER TABLE mcp_clients DROP COLUMN expires_at; DELETE FROM mcp_migrations WHERE migration_id >= 3"
      )
      db.close()
      yield* using(storesOn(filename, key))(Effect.gen(function*() {
        const store = yield* McpEventStore
        const streamId = yield* store.openStream(OWNER)
        expect(Option.getOrThrow(yield* store.append(streamId, "after the migration"))).toBe(`${streamId}.1`)
      }))
      const check = new Database(filename, { readonly: true })
      const migrations = check.prepare("SELECT migration_id, name FROM mcp_migrations ORDER BY migration_id").all()
      check.close()
      expect(migrations).toContainEqual({ migration_id: 3, name: "mcp_streams" })
      expect(migrations).toHaveLength(4)
    }))
})
