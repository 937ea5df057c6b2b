/**
 * `McpEventStore` and `McpEventBus`, called the way an MCP endpoint calls
 * them: one `ManagedRuntime` per backend, one `runtime.runPromise` per
 * operation, a 1 KB JSON-RPC message per event.
 *
 * Each sits beside a raw baseline doing the same work without Effect: the
 * same AES-256-GCM seal bound to the stream (and open, for replays) and
 * HMAC-SHA256 owner hash with `node:crypto`; for memory, an array per stream
 * in a `Map`; for SQLite, plain better-sqlite3 running the store's own
 * statements in a `BEGIN IMMEDIATE` transaction on a second file; for Redis,
 * plain ioredis running the store's own Lua scripts (`EVALSHA`). The bus rows
 * time one event from `publish` until a subscriber has it: memory beside a
 * Node `EventEmitter`, Redis beside a raw ioredis publisher and subscriber.
 */
import Database from "better-sqlite3"
import { Effect, Exit, Layer, ManagedRuntime, Queue, Scope } from "effect"
import { EventEmitter } from "node:events"
import { createCipheriv, createDecipheriv, createHmac, createSecretKey, randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Redis } from "ioredis"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import { Keys } from "../src/internal/keys.ts"
import * as MemoryStore from "../src/layers/memory/index.ts"
import { clientOptions } from "../src/layers/redis/client.ts"
import * as RedisStore from "../src/layers/redis/index.ts"
import * as Lua from "../src/layers/redis/lua.ts"
import * as SqliteStore from "../src/layers/sqlite/index.ts"
import type { McpEvent } from "../src/schema/mcpEvent.ts"
import { McpEventBus } from "../src/services/McpEventBus.ts"
import { McpEventStore } from "../src/services/McpEventStore.ts"
import { acquireRedisServer, freshPrefix } from "../test/support/redisServer.ts"
import { type Case, formatTable, register, type RunOptions, runCases } from "./harness.ts"

const options: RunOptions = { rounds: 7, roundMs: 300, warmupMs: 200 }

const OWNER = "sub:user-1|client:client-1"
const WINDOW = 100
const TTL = 5 * 60_000
/** A tools/call result of about 1 KB. */
const MESSAGE = JSON.stringify({
  jsonrpc: "2.0",
  id: 42,
  result: { content: [{ type: "text", text: "x".repeat(950) }], isError: false }
})

// ---------------------------------------------------------------------------
// The raw baseline's pieces

const hashKey = createSecretKey(randomBytes(32))
const sealKey = createSecretKey(randomBytes(32))
const rawHash = (secret: string): string => createHmac("sha256", hashKey).update(secret, "utf8").digest("base64url")
const rawStreamId = (): string => randomBytes(16).toString("base64url")
/** An AES-256-GCM envelope bound to `recordKey`, as `NodeCrypto.encrypt` makes one. */
const rawSeal = (plaintext: string, recordKey: string): string => {
  const iv = randomBytes(12)
  const cipher = createCipheriv("aes-256-gcm", sealKey, iv, { authTagLength: 16 })
  cipher.setAAD(Buffer.from(recordKey, "utf8"))
  const sealed = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final(), cipher.getAuthTag()])
  return `v1.kid00000.${iv.toString("base64url")}.${sealed.toString("base64url")}`
}
const rawOpen = (envelope: string, recordKey: string): string => {
  const [, , iv, sealed] = envelope.split(".") as [string, string, string, string]
  const bytes = Buffer.from(sealed, "base64url")
  const decipher = createDecipheriv("aes-256-gcm", sealKey, Buffer.from(iv, "base64url"), { authTagLength: 16 })
  decipher.setAAD(Buffer.from(recordKey, "utf8"))
  decipher.setAuthTag(bytes.subarray(bytes.length - 16))
  return Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - 16)), decipher.final()]).toString("utf8")
}

/** Replay the last 10 events of a full window (what a client that missed a few asks for). */
const REPLAY_AFTER = (last: number) => last - 10

// ---------------------------------------------------------------------------

interface StoreSide {
  readonly append: (streamId: string) => unknown
  readonly replay: (streamId: string, after: number) => unknown
}

/** Fill a stream on each side, then the two rows: append (on a stream of its own, window full) and replay. */
const storeCases = async (
  label: string,
  runtime: ManagedRuntime.ManagedRuntime<McpEventStore, unknown>,
  raw: StoreSide & { readonly open: () => string | Promise<string> }
): Promise<Array<Case>> => {
  const store = await runtime.runPromise(McpEventStore)
  const ourAppendStream = await runtime.runPromise(store.openStream(OWNER, { ttl: "1 hour" }))
  const ourReplayStream = await runtime.runPromise(store.openStream(OWNER, { ttl: "1 hour" }))
  const rawAppendStream = await raw.open()
  const rawReplayStream = await raw.open()
  for (let i = 0; i < WINDOW; i++) {
    await runtime.runPromise(store.append(ourAppendStream, MESSAGE))
    await runtime.runPromise(store.append(ourReplayStream, MESSAGE))
    await raw.append(rawAppendStream)
    await raw.append(rawReplayStream)
  }
  return [
    {
      name: `${label}: append (seal, number, store, trim to ${WINDOW})`,
      ours: () => runtime.runPromise(store.append(ourAppendStream, MESSAGE)),
      baseline: () => raw.append(rawAppendStream)
    },
    {
      name: `${label}: replay 10 events (owner check, read, open 10)`,
      ours: () => runtime.runPromise(store.replay(`${ourReplayStream}.${REPLAY_AFTER(WINDOW)}`, OWNER)),
      baseline: () => raw.replay(rawReplayStream, REPLAY_AFTER(WINDOW))
    }
  ]
}

/** The memory baseline: an array per stream in a `Map`. */
const rawMemory = (): StoreSide & { readonly open: () => string } => {
  const streams = new Map<string, { ownerHash: string; last: number; expiresAt: number; events: Array<{ n: number; e: string }> }>()
  return {
    open: () => {
      const id = rawStreamId()
      streams.set(id, { ownerHash: rawHash(OWNER), last: 0, expiresAt: Date.now() + TTL, events: [] })
      return id
    },
    append: (id) => {
      const envelope = rawSeal(MESSAGE, Keys.mcpStream(id))
      const stream = streams.get(id)
      if (stream === undefined || stream.expiresAt <= Date.now()) return undefined
      const n = ++stream.last
      stream.events.push({ n, e: envelope })
      if (stream.events.length > WINDOW) stream.events.splice(0, stream.events.length - WINDOW)
      stream.expiresAt = Date.now() + TTL
      return `${id}.${n}`
    },
    replay: (id, after) => {
      const ownerHash = rawHash(OWNER)
      const stream = streams.get(id)
      if (stream === undefined || stream.ownerHash !== ownerHash) return undefined
      stream.expiresAt = Date.now() + TTL
      return stream.events.filter((e) => e.n > after).map((e) => ({ id: `${id}.${e.n}`, message: rawOpen(e.e, Keys.mcpStream(id)) }))
    }
  }
}

/** The SQLite baseline: the store's statements on a plain better-sqlite3 connection. */
const rawSqlite = (db: Database.Database): StoreSide & { readonly open: () => string } => {
  const s = {
    insertStream: db.prepare(`INSERT INTO mcp_streams (id, owner_hash, last_seq, ttl, expires_at) VALUES (?, ?, 0, ?, ?)`),
    next: db.prepare<[number, string, number], { last_seq: number }>(
      `UPDATE mcp_streams SET last_seq = last_seq + 1, expires_at = ? + ttl WHERE id = ? AND expires_at > ? RETURNING last_seq`
    ),
    insertEvent: db.prepare(`INSERT INTO mcp_stream_events (stream_id, seq, envelope) VALUES (?, ?, ?)`),
    trim: db.prepare(`DELETE FROM mcp_stream_events WHERE stream_id = ? AND seq <= ?`),
    touch: db.prepare<[number, string, number, string, number], { last_seq: number }>(
      `UPDATE mcp_streams SET expires_at = ? + ttl WHERE id = ? AND expires_at > ? AND owner_hash = ? AND last_seq >= ? RETURNING last_seq`
    ),
    after: db.prepare<[string, number], { seq: number; envelope: string }>(
      `SELECT seq, envelope FROM mcp_stream_events WHERE stream_id = ? AND seq > ? ORDER BY seq`
    ),
    begin: db.prepare("BEGIN IMMEDIATE"),
    commit: db.prepare("COMMIT")
  }
  return {
    open: () => {
      const id = rawStreamId()
      s.insertStream.run(id, rawHash(OWNER), TTL, Date.now() + TTL)
      return id
    },
    append: (id) => {
      const envelope = rawSeal(MESSAGE, Keys.mcpStream(id))
      const now = Date.now()
      s.begin.run()
      const row = s.next.get(now, id, now)
      if (row !== undefined) {
        s.insertEvent.run(id, row.last_seq, envelope)
        if (row.last_seq > WINDOW) s.trim.run(id, row.last_seq - WINDOW)
      }
      s.commit.run()
      return row === undefined ? undefined : `${id}.${row.last_seq}`
    },
    replay: (id, after) => {
      const ownerHash = rawHash(OWNER)
      const now = Date.now()
      s.begin.run()
      const row = s.touch.get(now, id, now, ownerHash, after)
      const events = row === undefined ? [] : s.after.all(id, after)
      s.commit.run()
      return events.map((e) => ({ id: `${id}.${e.seq}`, message: rawOpen(e.envelope, Keys.mcpStream(id)) }))
    }
  }
}

/** The Redis baseline: the store's scripts through plain ioredis. */
const rawRedis = (redis: Redis, prefix: string): StoreSide & { readonly open: () => Promise<string> } => {
  const evalsha = (script: Lua.Script, ...args: Array<string | number>) => redis.evalsha(script.sha, 0, prefix, ...args)
  return {
    open: async () => {
      const id = rawStreamId()
      const now = Date.now()
      await evalsha(Lua.openStream, Keys.mcpStream(id), now, now + TTL, rawHash(OWNER), TTL)
      return id
    },
    append: (id) => evalsha(Lua.appendStreamEvent, Keys.mcpStream(id), Date.now(), rawSeal(MESSAGE, Keys.mcpStream(id)), WINDOW),
    replay: (id, after) =>
      evalsha(Lua.replayStream, Keys.mcpStream(id), Date.now(), rawHash(OWNER), after).then((reply) => {
        const out = reply as Array<string>
        const events: Array<{ id: string; message: string }> = []
        for (let i = 1; i < out.length; i += 2) {
          events.push({ id: `${id}.${out[i]}`, message: rawOpen(out[i + 1] as string, Keys.mcpStream(id)) })
        }
        return events
      })
  }
}

/** Publish, then wait until the subscription has the event. */
const busCase = async (
  label: string,
  runtime: ManagedRuntime.ManagedRuntime<McpEventBus, unknown>,
  scope: Scope.Scope,
  baseline: () => unknown
): Promise<Case> => {
  const bus = await runtime.runPromise(McpEventBus)
  const queue = await runtime.runPromise(Scope.extend(bus.subscribe, scope))
  const event: McpEvent = { _tag: "ResourceUpdated", uri: "file:///project/readme.md" }
  const roundTrip = Effect.zipRight(bus.publish(event), Queue.take(queue))
  return { name: `${label}: publish until a subscriber has it`, ours: () => runtime.runPromise(roundTrip), baseline }
}

const run = async (): Promise<string> => {
  const dir = mkdtempSync(join(tmpdir(), "mcp-streams-bench-"))
  const scope = Effect.runSync(Scope.make())
  const crypto = NodeCrypto.layerEphemeral
  const memory = ManagedRuntime.make(MemoryStore.layer({ sweepInterval: "1 day" }).pipe(Layer.provide(crypto)))
  const sqlite = ManagedRuntime.make(
    SqliteStore.layer({ filename: join(dir, "ours.db"), sweepInterval: "1 day" }).pipe(Layer.provide(crypto))
  )
  const rawFile = join(dir, "raw.db")
  // The raw side's schema is the store's own: build the layer on its file once.
  const schema = ManagedRuntime.make(SqliteStore.layer({ filename: rawFile, sweepInterval: "1 day" }).pipe(Layer.provide(crypto)))
  await schema.runPromise(McpEventStore)
  await schema.dispose()
  const db = new Database(rawFile)
  db.pragma("journal_mode = WAL")
  db.pragma("busy_timeout = 5000")
  try {
    const server = await Effect.runPromise(Scope.extend(acquireRedisServer, scope))
    const redis = ManagedRuntime.make(
      RedisStore.layer({ url: server.url, keyPrefix: freshPrefix(), sweepInterval: "1 day" }).pipe(Layer.provide(crypto))
    )
    // The same connection settings as the layer's (timeouts, auto-pipelining): the ratio is our code's cost.
    const raw = new Redis(server.url, clientOptions({ url: server.url }))
    const rawSubscriber = new Redis(server.url, { lazyConnect: true })
    try {
      await raw.connect()
      await rawSubscriber.connect()
      await Promise.all([Lua.openStream, Lua.appendStreamEvent, Lua.replayStream].map((s) => raw.script("LOAD", s.lua)))
      const rawChannel = `${freshPrefix()}mcp-events`
      await rawSubscriber.subscribe(rawChannel)
      const waiting: Array<() => void> = []
      rawSubscriber.on("message", (_channel, message) => {
        JSON.parse(message)
        waiting.shift()?.()
      })
      const emitter = new EventEmitter()
      const rawEvent = { _tag: "ResourceUpdated", uri: "file:///project/readme.md" }

      const cases: Array<Case> = [
        ...await storeCases("memory", memory, rawMemory()),
        ...await storeCases("sqlite", sqlite, rawSqlite(db)),
        ...await storeCases("redis", redis, rawRedis(raw, freshPrefix())),
        await busCase("memory bus", memory, scope, () => {
          let received: unknown
          emitter.once("event", (e) => (received = e))
          emitter.emit("event", rawEvent)
          return received
        }),
        await busCase("redis bus (PUBLISH, SUBSCRIBE)", redis, scope, () =>
          new Promise<void>((resolve) => {
            waiting.push(resolve)
            void raw.publish(rawChannel, JSON.stringify(rawEvent))
          }))
      ]
      const rows = await runCases(cases, options)
      return formatTable("MCP streams: McpEventStore and McpEventBus, runPromise per op, vs raw node:crypto + Map / better-sqlite3 / ioredis", rows, options)
    } finally {
      raw.disconnect()
      rawSubscriber.disconnect()
      await redis.dispose()
    }
  } finally {
    db.close()
    await memory.dispose()
    await sqlite.dispose()
    await Effect.runPromise(Scope.close(scope, Exit.void))
    rmSync(dir, { recursive: true, force: true })
  }
}

register({ name: "streams", run })
