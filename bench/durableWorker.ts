/**
 * The Worker `bench/durable.ts` bundles and runs in Miniflare: the backend's
 * `StoreObject`, extended with loops that time operations inside the object,
 * and routes that time calls through the binding from inside a Worker.
 * Timing is `performance.now()` inside workerd (it advances during execution
 * in local workerd; measured), so no request overhead is counted in the
 * in-object rows.
 *
 * Routes (JSON in, JSON out):
 * - `POST /object {method, args}`: a method of the `BENCH` object named "bench";
 * - `POST /binding {op, side, n}`: `n` sequential calls through the binding
 *   from this Worker, timed here: `rpc` (one RPC call per op: the object's
 *   `getAccessToken` vs a bare method doing only its `SELECT`) or `layer`
 *   (`TokenStore.getAccessToken` through the layer with WebCrypto vs a
 *   WebCrypto HMAC and that bare method).
 */
import type { DurableObjectNamespace } from "@cloudflare/workers-types"
import { ConfigProvider, Effect, Layer } from "effect"
import * as WebCrypto from "../src/layers/crypto/web.ts"
import { DurableStore, StoreObject } from "../src/exports/durable.ts"
import type { CallContext } from "../src/layers/durable/protocol.ts"
import { Crypto } from "../src/services/Crypto.ts"
import { TokenStore } from "../src/services/TokenStore.ts"

export { StoreObject }

const DAY = 86_400_000
/** Far from any sweep during a run: a due sweep would be measured on one side only. */
const ctxAt = (now: number): CallContext => ({ now, sweepEvery: DAY, graceWindow: 30_000 })
const NOW = 1_800_000_000_000

const sessionColumns =
  "id, api_key_hash, subject, initialized, protocol_version, client_info, created_at, last_accessed_at, idle_expires_at, absolute_expires_at"
const LRU = "ORDER BY last_accessed_at, created_at, rowid"
const MAX_SESSIONS = 10_000
const IDLE = DAY
const ABSOLUTE = 7 * DAY
const TOUCH = { touchInterval: DAY, idleTtl: IDLE }

const codeBody = JSON.stringify({
  grantId: "grant-1",
  clientId: "client-1",
  subject: "user-1",
  redirectUri: "https://app.example/callback",
  codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
  codeChallengeMethod: "S256",
  scopes: ["read"],
  resource: "https://mcp.example/mcp",
  createdAt: NOW,
  expiresAt: NOW + DAY
})
const accessBody = (i: number) =>
  JSON.stringify({
    grantId: `grant-${i}`,
    clientId: "client-1",
    subject: `user-${i}`,
    scopes: ["read"],
    resource: "https://mcp.example/mcp",
    createdAt: NOW,
    expiresAt: NOW + 7 * DAY
  })
const refreshBody = JSON.stringify({
  grantId: "grant-rot",
  familyId: "grant-rot",
  generation: 0,
  clientId: "client-1",
  subject: "user-1",
  scopes: ["read"],
  resource: "https://mcp.example/mcp",
  createdAt: NOW,
  expiresAt: NOW + 30 * DAY,
  absoluteExpiresAt: NOW + 90 * DAY
})
/** A generous policy (a million per hour): every consume of the bench is allowed, on both sides. */
const GCRA = { bucket: "bench", limit: 1_000_000, interval: 4, capacity: 4_000_000 }

/** A stand-in for a sealed pair: the object stores it without looking. */
const ENVELOPE = `v1.kid00000.${"A".repeat(16)}.${"B".repeat(120)}`

export interface Timed {
  readonly ms: number
  readonly ops: number
  /** Checks the work happened (e.g. how many consumes won). */
  readonly checksum: number
}

/** `n` operations back to back, timed as a whole (workerd's timer ticks in whole milliseconds: no per-op samples). */
const timeLoop = (n: number, op: (i: number) => number): Timed => {
  let checksum = 0
  const start = performance.now()
  for (let i = 0; i < n; i++) checksum += op(i)
  return { ms: performance.now() - start, ops: n, checksum }
}

const timeLoopAsync = async (n: number, op: (i: number) => Promise<number>): Promise<Timed> => {
  let checksum = 0
  const start = performance.now()
  for (let i = 0; i < n; i++) checksum += await op(i)
  return { ms: performance.now() - start, ops: n, checksum }
}

/** `StoreObject` with benchmark loops: each side runs inside the object, on the same storage. */
export class BenchStoreObject extends StoreObject {
  #rotationHead: Record<string, number> = {}

  get #sql() {
    return this.ctx.storage.sql
  }

  /** Fill the tables the lookups read: `n` access tokens and `n` sessions. */
  benchFill(n: number): number {
    this.ctx.storage.transactionSync(() => {
      for (let i = 0; i < n; i++) {
        this.#sql.exec(
          "INSERT OR REPLACE INTO mcp_access_tokens (hash, grant_id, body, expires_at) VALUES (?, ?, ?, ?)",
          `access-${i}`,
          `grant-${i}`,
          accessBody(i),
          NOW + 7 * DAY
        )
        this.#sql.exec(
          `INSERT OR REPLACE INTO mcp_sessions (${sessionColumns}, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          `session-${i}`,
          `key-${i}`,
          null,
          1,
          "2025-06-18",
          null,
          NOW,
          NOW,
          NOW + IDLE,
          NOW + ABSOLUTE,
          NOW + IDLE
        )
      }
    })
    // One call now, so the first measured call does not run the object's first (due) sweep.
    this.sweep(ctxAt(NOW))
    return n
  }

  /** Codes `prefix-0 .. prefix-(n-1)`, unconsumed, for one side's consume run. */
  benchCodes(prefix: string, n: number): number {
    this.ctx.storage.transactionSync(() => {
      for (let i = 0; i < n; i++) {
        this.#sql.exec(
          "INSERT OR REPLACE INTO mcp_codes (hash, grant_id, body, expires_at, consumed_at) VALUES (?, ?, ?, ?, NULL)",
          `${prefix}-${i}`,
          "grant-1",
          codeBody,
          NOW + DAY
        )
      }
    })
    return n
  }

  /** The first token of a rotation chain for one side. */
  benchChain(side: string): number {
    this.#sql.exec(
      "INSERT OR REPLACE INTO mcp_refresh_tokens (hash, grant_id, body, expires_at) VALUES (?, ?, ?, ?)",
      `${side}-rt-0`,
      "grant-rot",
      refreshBody,
      NOW + 30 * DAY
    )
    this.#rotationHead[side] = 0
    return 1
  }

  /** `n` operations of `op` inside the object: `ours` through `StoreObject`'s method, `raw` the same SQL on `ctx.storage.sql`. */
  benchRun(op: string, side: "ours" | "raw", n: number, lookups: number, round: number): Timed {
    const ctx = ctxAt(NOW)
    const sql = this.#sql
    const one = (reply: unknown): number => (reply === null ? 0 : 1)
    switch (`${op}:${side}`) {
      case "consumeCode:ours":
        return timeLoop(n, (i) => {
          const reply = this.consumeCode(ctx, `ours-${round}-${i}`)
          return typeof reply === "object" && reply._tag === "Consumed" ? 1 : 0
        })
      case "consumeCode:raw":
        return timeLoop(n, (i) => {
          const rows = sql.exec(
            "UPDATE mcp_codes SET consumed_at = ? WHERE hash = ? AND consumed_at IS NULL AND expires_at > ? RETURNING body",
            NOW,
            `raw-${round}-${i}`,
            NOW
          ).toArray()
          return rows.length
        })
      case "getAccessToken:ours":
        return timeLoop(n, (i) => one(this.getAccessToken(ctx, `access-${(i * 7919) % lookups}`)))
      case "getAccessToken:raw":
        return timeLoop(n, (i) => {
          const rows = sql.exec(
            "SELECT body FROM mcp_access_tokens WHERE hash = ? AND expires_at > ?",
            `access-${(i * 7919) % lookups}`,
            NOW
          ).toArray()
          return rows.length
        })
      case "getSession:ours":
        return timeLoop(n, (i) => one(this.getSession(ctx, `session-${(i * 7919) % lookups}`, TOUCH)))
      case "getSession:raw":
        return timeLoop(n, (i) => {
          const rows = sql.exec(
            `SELECT ${sessionColumns} FROM mcp_sessions WHERE id = ? AND expires_at > ?`,
            `session-${(i * 7919) % lookups}`,
            NOW
          ).toArray()
          return rows.length
        })
      case "createSession:ours":
        return timeLoop(n, (i) => {
          const id = `ours-new-${round}-${i}`
          const reply = this.createSession(ctx, {
            id,
            api_key_hash: `key-ours-${round}-${i}`,
            subject: null,
            initialized: 0,
            protocol_version: null,
            client_info: null,
            created_at: NOW,
            last_accessed_at: NOW,
            idle_expires_at: NOW + IDLE,
            absolute_expires_at: NOW + ABSOLUTE
          }, { maxPerKey: 5, maxSessions: MAX_SESSIONS })
          return Array.isArray(reply) ? 1 : 0
        })
      case "createSession:raw":
        return timeLoop(n, (i) =>
          this.ctx.storage.transactionSync(() => {
            const key = `key-raw-${round}-${i}`
            sql.exec("DELETE FROM mcp_sessions WHERE api_key_hash = ? AND expires_at <= ?", key, NOW)
            const ofKey = sql.exec(`SELECT ${sessionColumns} FROM mcp_sessions WHERE api_key_hash = ? ${LRU}`, key).toArray()
            for (const row of ofKey.slice(0, Math.max(0, ofKey.length - 5 + 1))) {
              sql.exec("DELETE FROM mcp_sessions WHERE id = ?", row["id"] ?? null)
            }
            const count = Number(sql.exec("SELECT count(*) AS n FROM mcp_sessions").one()["n"])
            if (count - MAX_SESSIONS + 1 > 0) {
              for (
                const row of sql.exec(`SELECT ${sessionColumns} FROM mcp_sessions ${LRU} LIMIT ?`, count - MAX_SESSIONS + 1)
                  .toArray()
              ) sql.exec("DELETE FROM mcp_sessions WHERE id = ?", row["id"] ?? null)
            }
            sql.exec(
              `INSERT INTO mcp_sessions (${sessionColumns}, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
              `raw-new-${round}-${i}`,
              key,
              null,
              0,
              null,
              null,
              NOW,
              NOW,
              NOW + IDLE,
              NOW + ABSOLUTE,
              NOW + IDLE
            )
            return 1
          }))
      case "rotateRefreshToken:ours":
        return timeLoop(n, () => {
          const head = this.#rotationHead["ours"] ?? 0
          const reply = this.rotateRefreshToken(ctx, `ours-rt-${head}`, {
            hash: `ours-rt-${head + 1}`,
            envelope: ENVELOPE,
            ttl: 30 * DAY
          })
          this.#rotationHead["ours"] = head + 1
          return typeof reply === "object" && reply._tag === "Rotated" ? 1 : 0
        })
      case "rotateRefreshToken:raw":
        return timeLoop(n, () =>
          this.ctx.storage.transactionSync(() => {
            const head = this.#rotationHead["raw"] ?? 0
            const rows = sql.exec(
              `UPDATE mcp_refresh_tokens SET rotated_at = ?, successor_hash = ?, successor_envelope = ?
                WHERE hash = ? AND rotated_at IS NULL AND expires_at > ? RETURNING body`,
              NOW,
              `raw-rt-${head + 1}`,
              ENVELOPE,
              `raw-rt-${head}`,
              NOW
            ).toArray()
            const previous = JSON.parse(String(rows[0]?.["body"])) as Record<string, number | string>
            const next = {
              ...previous,
              generation: Number(previous["generation"]) + 1,
              createdAt: NOW,
              expiresAt: Math.min(NOW + 30 * DAY, Number(previous["absoluteExpiresAt"]))
            }
            sql.exec(
              "INSERT OR REPLACE INTO mcp_refresh_tokens (hash, grant_id, body, expires_at) VALUES (?, ?, ?, ?)",
              `raw-rt-${head + 1}`,
              String(previous["grantId"]),
              JSON.stringify(next),
              next.expiresAt
            )
            this.#rotationHead["raw"] = head + 1
            return rows.length
          }))
      case "consumeToken:ours":
        return timeLoop(n, (i) => {
          const reply = this.consumeToken(ctx, `ratelimit:bench:${side}-${round}-${i % lookups}`, GCRA)
          return typeof reply === "object" && "allowed" in reply && reply.allowed ? 1 : 0
        })
      case "consumeToken:raw":
        // The same steps on raw SQL: read the live state, take a token (GCRA, inline), write it back.
        return timeLoop(n, (i) => {
          const key = `ratelimit:bench:${side}-${round}-${i % lookups}`
          const row = sql.exec("SELECT expires_at FROM mcp_rate_limits WHERE key = ? AND expires_at > ?", key, NOW).toArray()[0]
          const base = Math.max(Number(row?.["expires_at"] ?? NOW), NOW)
          if (base + GCRA.interval - NOW > GCRA.capacity) return 0
          sql.exec(
            "INSERT INTO mcp_rate_limits (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at",
            key,
            base + GCRA.interval
          )
          return 1
        })
      case "rememberId:ours":
        return timeLoop(n, (i) => this.rememberId(ctx, `replay:bench:${side}-${round}-${i}`, NOW + DAY) === true ? 1 : 0)
      case "rememberId:raw":
        return timeLoop(n, (i) =>
          sql.exec(
            `INSERT INTO mcp_replay_ids (key, expires_at) VALUES (?, ?)
              ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE expires_at <= ? RETURNING 1`,
            `replay:bench:${side}-${round}-${i}`,
            NOW + DAY,
            NOW
          ).toArray().length)
      default:
        throw new Error(`no bench ${op}:${side}`)
    }
  }

  /** The bare lookup the binding rows compare against: one `SELECT`, no call wrapper. */
  benchRawGet(hash: string, now: number): string | null {
    const rows = this.#sql.exec("SELECT body FROM mcp_access_tokens WHERE hash = ? AND expires_at > ?", hash, now).toArray()
    const body = rows[0]?.["body"]
    return typeof body === "string" ? body : null
  }
}

interface Env {
  readonly BENCH: DurableObjectNamespace<BenchStoreObject>
  readonly RS_TOKENS_ENC_KEY: string
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } })

/** Calls through the binding, timed from this Worker. */
const binding = async (env: Env, op: string, side: string, n: number, lookups: number): Promise<Timed> => {
  const id = env.BENCH.idFromName("bench")
  const ctx = ctxAt(NOW)
  if (op === "rpc") {
    return side === "ours"
      ? timeLoopAsync(n, async (i) => (await env.BENCH.get(id).getAccessToken(ctx, `access-${(i * 7919) % lookups}`)) === null ? 0 : 1)
      : timeLoopAsync(n, async (i) => (await env.BENCH.get(id).benchRawGet(`access-${(i * 7919) % lookups}`, NOW)) === null ? 0 : 1)
  }
  // The layer (tokens in the store "bench/tokens" hold the HMACs of `token-{i}`), against a hash and a bare call.
  const crypto = WebCrypto.layerConfig().pipe(
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["RS_TOKENS_ENC_KEY", env.RS_TOKENS_ENC_KEY]]))))
  )
  const stores = DurableStore.layer({ namespace: env.BENCH, name: "bench", sweepInterval: "1 day" }).pipe(Layer.provideMerge(crypto))
  return Effect.runPromise(Effect.gen(function*() {
    const tokens = yield* TokenStore
    const hasher = yield* Crypto
    if (side === "ours") {
      return yield* Effect.promise(() =>
        timeLoopAsync(n, (i) =>
          Effect.runPromise(Effect.map(tokens.getAccessToken(`token-${(i * 7919) % lookups}`), (found) => found._tag === "Some" ? 1 : 0)))
      )
    }
    return yield* Effect.promise(() =>
      timeLoopAsync(n, async (i) => {
        const hash = await Effect.runPromise(hasher.hash(`token-${(i * 7919) % lookups}`))
        // The layer stamped these with the real clock; so does the baseline's expiry check.
        return (await env.BENCH.get(env.BENCH.idFromName("bench/tokens")).benchRawGet(hash, Date.now())) === null ? 0 : 1
      })
    )
  }).pipe(Effect.provide(stores)))
}

/** Save `n` access tokens `token-{i}` through the layer (for the `layer` binding row). */
const fillThroughLayer = (env: Env, n: number) => {
  const crypto = WebCrypto.layerConfig().pipe(
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["RS_TOKENS_ENC_KEY", env.RS_TOKENS_ENC_KEY]]))))
  )
  const stores = DurableStore.layer({ namespace: env.BENCH, name: "bench", sweepInterval: "1 day" }).pipe(Layer.provideMerge(crypto))
  return Effect.runPromise(Effect.gen(function*() {
    const tokens = yield* TokenStore
    yield* Effect.forEach(
      Array.from({ length: n }, (_, i) => i),
      (i) =>
        tokens.saveAccessToken(`token-${i}`, {
          grantId: `grant-${i}`,
          clientId: "client-1",
          subject: `user-${i}`,
          scopes: ["read"],
          resource: "https://mcp.example/mcp"
        }),
      { concurrency: 16, discard: true }
    )
    return n
  }).pipe(Effect.provide(stores)))
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const path = new URL(request.url).pathname
    const body = await request.json() as Record<string, unknown>
    try {
      if (path === "/object") {
        const stub = env.BENCH.get(env.BENCH.idFromName("bench"))
        const method = Reflect.get(stub, String(body["method"])) as (...args: ReadonlyArray<unknown>) => Promise<unknown>
        return json({ result: await Reflect.apply(method, stub, body["args"] as ReadonlyArray<unknown>) })
      }
      if (path === "/fill-layer") return json({ result: await fillThroughLayer(env, Number(body["n"])) })
      if (path === "/binding") {
        return json({
          result: await binding(env, String(body["op"]), String(body["side"]), Number(body["n"]), Number(body["lookups"]))
        })
      }
      return json({ error: "no route" }, 404)
    } catch (error) {
      return json({ error: error instanceof Error ? error.message : String(error) }, 500)
    }
  }
}
