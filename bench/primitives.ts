/**
 * The `RateLimiter` and `ReplayCache` per backend (memory, SQLite, Redis),
 * called the way a server calls them: one `ManagedRuntime` per backend, one
 * `runtime.runPromise` per operation.
 *
 * Each sits beside a raw baseline measured in the same run that does the same
 * work without Effect or the store's bookkeeping: the same HMAC-SHA256 lookup
 * hash of `ratelimit\0{bucket}\0{key}` (or `replay\0{scope}\0{id}`), the same
 * token-bucket arithmetic (GCRA, `src/internal/rateLimit.ts`) with
 * `Date.now()`, and the same storage step:
 * - memory: a `Map` of buckets updated in place (as the store's are);
 * - SQLite: plain better-sqlite3 prepared statements of the store's own SQL
 *   (the upsert; for a refusal, the read that follows it)
 *   on a second file with the store's schema;
 * - Redis: raw ioredis `EVALSHA` of the store's own Lua scripts
 *   (`consumeToken`, `rememberId`), with the layer's connection settings.
 *
 * Rows: `consume` on the allowed path (10,000 client addresses in turn,
 * 1,000 per minute each, so every call takes a token), `consume` on the
 * refused path (one address whose single token is spent), and a first
 * sighting of a fresh id. The file backend is left out: every change writes
 * and fsyncs the whole snapshot (or, batched, snapshots in the background of
 * the same process), so its row would measure the disk or disturb the
 * others, not the primitives.
 */
import Database from "better-sqlite3"
import { Effect, Exit, Layer, ManagedRuntime, Scope } from "effect"
import { Redis } from "ioredis"
import { createHmac, createSecretKey, randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Keys } from "../src/internal/keys.ts"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import * as MemoryStore from "../src/layers/memory/index.ts"
import { clientOptions } from "../src/layers/redis/client.ts"
import * as RedisStore from "../src/layers/redis/index.ts"
import * as Lua from "../src/layers/redis/lua.ts"
import * as SqliteStore from "../src/layers/sqlite/index.ts"
import type { RateLimitDecision, RateLimitPolicy } from "../src/services/RateLimiter.ts"
import { RateLimiter } from "../src/services/RateLimiter.ts"
import { ReplayCache } from "../src/services/ReplayCache.ts"
import { acquireRedisServer, freshPrefix } from "../test/support/redisServer.ts"
import { type Case, formatTable, register, type RunOptions, runCases } from "./harness.ts"

const options: RunOptions = { rounds: 7, roundMs: 300, warmupMs: 200 }
const ADDRESSES = 10_000
const IN_FLIGHT = 50
/** Room for every id the run remembers (fresh ids for minutes): the bound is not what is measured. */
const MAX_IDS = 5_000_000

/** Allowed path: 1,000 per minute per address, 10,000 addresses in turn. */
const open: RateLimitPolicy = { bucket: "authorize", limit: 1_000, window: "1 minute" }
/** Refused path: one token per hour, spent by the first call. */
const shut: RateLimitPolicy = { bucket: "signin-user", limit: 1, window: "1 hour" }
const REPLAY_TTL = 5 * 60_000

/** The policy in whole milliseconds, as `policyOrError` works it out. */
const gcra = (limit: number, windowMs: number) => {
  const interval = Math.ceil(windowMs / limit)
  return { limit, interval, capacity: interval * limit }
}
const OPEN = gcra(1_000, 60_000)
const SHUT = gcra(1, 3_600_000)

const address = (i: number) => `198.51.100.${i % ADDRESSES}`
const jti = (side: string, i: number) => `${side}-jti-${i}-e1j3V_bKic8-LAEB`

// ---------------------------------------------------------------------------
// The baseline's pieces: what NodeCrypto computes and what `src/internal/rateLimit.ts` decides

const hashKey = createSecretKey(randomBytes(32))
const rawHash = (secret: string): string => createHmac("sha256", hashKey).update(secret, "utf8").digest("base64url")
const rawRateKey = (bucket: string, key: string) => Keys.rateLimit(bucket, rawHash(`ratelimit\u0000${bucket}\u0000${key}`))
const rawReplayKey = (scope: string, id: string) => Keys.replay(scope, rawHash(`replay\u0000${scope}\u0000${id}`))

type Policy = ReturnType<typeof gcra>

/** The decision for a bucket at `base` (its state, at least now), as the store reports it. */
const rawDecision = (g: Policy, base: number, now: number, allowed: boolean): RateLimitDecision => {
  const after = allowed ? base + g.interval : base
  return {
    allowed,
    limit: g.limit,
    remaining: Math.max(0, Math.floor((g.capacity - (after - now)) / g.interval)),
    retryAfterMs: allowed ? 0 : base + g.interval - now - g.capacity,
    resetAfterMs: after - now
  }
}

// ---------------------------------------------------------------------------

const memoryRows = async (): Promise<string> => {
  const runtime = ManagedRuntime.make(
    MemoryStore.layer({ sweepInterval: "1 day", replayCache: { maxIds: MAX_IDS } }).pipe(Layer.provideMerge(NodeCrypto.layerEphemeral))
  )
  try {
    const limiter = await runtime.runPromise(RateLimiter)
    const cache = await runtime.runPromise(ReplayCache)
    const buckets = new Map<string, { tat: number }>()
    const ids = new Map<string, number>()
    /** The same decision, the state updated in place (as the store does: no delete-and-set per call). */
    const rawConsume = (g: Policy, bucket: string, key: string): RateLimitDecision => {
      const k = rawRateKey(bucket, key)
      const now = Date.now()
      const state = buckets.get(k)
      const base = state !== undefined && state.tat > now ? state.tat : now
      const allowed = base + g.interval - now <= g.capacity
      if (allowed) {
        if (state === undefined) buckets.set(k, { tat: base + g.interval })
        else state.tat = base + g.interval
      }
      return rawDecision(g, base, now, allowed)
    }
    const rawRemember = (id: string) => {
      const k = rawReplayKey("dpop", id)
      const now = Date.now()
      const held = ids.get(k)
      if (held !== undefined && now < held) return "Replayed"
      ids.set(k, now + REPLAY_TTL)
      return "First"
    }
    const cases: Array<Case> = [
      {
        name: "memory RateLimiter.consume, allowed",
        ours: (i) => runtime.runPromise(limiter.consume(open, address(i))),
        baseline: (i) => rawConsume(OPEN, open.bucket, address(i))
      },
      {
        name: "memory RateLimiter.consume, refused",
        ours: () => runtime.runPromise(limiter.consume(shut, "alice")),
        baseline: () => rawConsume(SHUT, shut.bucket, "alice")
      },
      {
        name: "memory ReplayCache.remember, first sight",
        ours: (i) => runtime.runPromise(cache.remember("dpop", jti("ours", i), REPLAY_TTL)),
        baseline: (i) => rawRemember(jti("raw", i))
      }
    ]
    return formatTable("RateLimiter and ReplayCache, memory: runPromise per op vs a raw Map (same hashing, same arithmetic)", await runCases(cases, options), options)
  } finally {
    await runtime.dispose()
  }
}

// ---------------------------------------------------------------------------

const sqliteRows = async (): Promise<string> => {
  const dir = mkdtempSync(join(tmpdir(), "mcp-primitives-bench-"))
  const layer = (filename: string) =>
    SqliteStore.layer({ filename, sweepInterval: "1 day" }).pipe(Layer.provideMerge(NodeCrypto.layerEphemeral))
  // The raw side's schema is the store's own: build the layer on its file once, then use plain better-sqlite3.
  const rawFile = join(dir, "raw.db")
  const schema = ManagedRuntime.make(layer(rawFile))
  await schema.runPromise(RateLimiter)
  await schema.dispose()
  const db = new Database(rawFile)
  db.pragma("journal_mode = WAL")
  db.pragma("busy_timeout = 5000")
  const runtime = ManagedRuntime.make(layer(join(dir, "ours.db")))
  try {
    const limiter = await runtime.runPromise(RateLimiter)
    const cache = await runtime.runPromise(ReplayCache)
    const upsert = db.prepare<[string, number, number, number, number, number, number], { expires_at: number }>(
      `INSERT INTO mcp_rate_limits (key, expires_at) VALUES (?, ?)
        ON CONFLICT (key) DO UPDATE SET expires_at = max(expires_at, ?) + ?
        WHERE max(expires_at, ?) + ? <= ?
        RETURNING expires_at`
    )
    const read = db.prepare<[string, number], { expires_at: number }>(
      "SELECT expires_at FROM mcp_rate_limits WHERE key = ? AND expires_at > ?"
    )
    const remember = db.prepare<[string, number, number], { expires_at: number }>(
      `INSERT INTO mcp_replay_ids (key, expires_at) VALUES (?, ?)
        ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE expires_at <= ?
        RETURNING expires_at`
    )
    /** The store's consume, statement for statement: the upsert; when it takes nothing, the read for the retry-after. */
    const rawConsume = (g: Policy, bucket: string, key: string): RateLimitDecision => {
      const k = rawRateKey(bucket, key)
      const now = Date.now()
      const taken = upsert.get(k, now + g.interval, now, g.interval, now, g.interval, now + g.capacity)
      if (taken !== undefined) return rawDecision(g, taken.expires_at - g.interval, now, true)
      const base = Math.max(read.get(k, now)?.expires_at ?? now, now)
      return rawDecision(g, base, now, false)
    }
    const cases: Array<Case> = [
      {
        name: "sqlite RateLimiter.consume, allowed (1 upsert)",
        ours: (i) => runtime.runPromise(limiter.consume(open, address(i))),
        baseline: (i) => rawConsume(OPEN, open.bucket, address(i))
      },
      {
        name: "sqlite RateLimiter.consume, refused (upsert + read)",
        ours: () => runtime.runPromise(limiter.consume(shut, "alice")),
        baseline: () => rawConsume(SHUT, shut.bucket, "alice")
      },
      {
        name: "sqlite ReplayCache.remember, first sight (1 upsert)",
        ours: (i) => runtime.runPromise(cache.remember("dpop", jti("ours", i), REPLAY_TTL)),
        baseline: (i) => {
          const now = Date.now()
          return remember.get(rawReplayKey("dpop", jti("raw", i)), now + REPLAY_TTL, now) === undefined ? "Replayed" : "First"
        }
      }
    ]
    return formatTable(
      "RateLimiter and ReplayCache, SQLite: runPromise per op vs raw better-sqlite3 (same SQL, same hashing)",
      await runCases(cases, options),
      options
    )
  } finally {
    await runtime.dispose()
    db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------

const redisRows = async (): Promise<string> => {
  const scope = Effect.runSync(Scope.make())
  try {
    const server = await Effect.runPromise(Scope.extend(acquireRedisServer, scope))
    const rawPrefix = freshPrefix()
    const runtime = ManagedRuntime.make(
      RedisStore.layer({ url: server.url, keyPrefix: freshPrefix(), sweepInterval: "1 day" }).pipe(
        Layer.provideMerge(NodeCrypto.layerEphemeral)
      )
    )
    // The same connection settings as the layer's (timeouts, auto-pipelining): the ratio is our code's cost.
    const raw = new Redis(server.url, { ...clientOptions({ url: server.url }), lazyConnect: false })
    try {
      const limiter = await runtime.runPromise(RateLimiter)
      const cache = await runtime.runPromise(ReplayCache)
      await Promise.all([Lua.consumeToken, Lua.rememberId].map((script) => raw.script("LOAD", script.lua)))
      const evalsha = (script: Lua.Script, ...args: Array<string | number>) => raw.evalsha(script.sha, 0, rawPrefix, ...args)
      const rawConsume = async (g: Policy, bucket: string, key: string): Promise<RateLimitDecision> => {
        const now = Date.now()
        const [taken, state] = await evalsha(Lua.consumeToken, rawRateKey(bucket, key), now, g.interval, g.capacity) as [
          number,
          string
        ]
        return taken === 1
          ? rawDecision(g, Number(state) - g.interval, now, true)
          : rawDecision(g, Number(state), now, false)
      }
      const rawRemember = async (id: string) => {
        const now = Date.now()
        return (await evalsha(Lua.rememberId, rawReplayKey("dpop", id), now, now + REPLAY_TTL)) === 1 ? "First" : "Replayed"
      }
      const both = (c: Omit<Case, "concurrency">): Array<Case> => [c, { ...c, concurrency: IN_FLIGHT }]
      const cases: Array<Case> = [
        ...both({
          name: "redis RateLimiter.consume, allowed (1 script)",
          ours: (i) => runtime.runPromise(limiter.consume(open, address(i))),
          baseline: (i) => rawConsume(OPEN, open.bucket, address(i))
        }),
        {
          name: "redis RateLimiter.consume, refused (1 script)",
          ours: () => runtime.runPromise(limiter.consume(shut, "alice")),
          baseline: () => rawConsume(SHUT, shut.bucket, "alice")
        },
        ...both({
          name: "redis ReplayCache.remember, first sight (1 script)",
          ours: (i) => runtime.runPromise(cache.remember("dpop", jti("ours", i), REPLAY_TTL)),
          baseline: (i) => rawRemember(jti("raw", i))
        })
      ]
      return formatTable(
        "RateLimiter and ReplayCache, Redis: runPromise per op vs raw ioredis EVALSHA of the same scripts (same hashing)",
        await runCases(cases, options),
        options
      )
    } finally {
      raw.disconnect()
      await runtime.dispose()
    }
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

const run = async (): Promise<string> => [await memoryRows(), await sqliteRows(), await redisRows()].join("\n\n")

register({ name: "primitives", run })
