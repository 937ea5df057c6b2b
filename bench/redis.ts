/**
 * The Redis stores' hot operations beside raw `ioredis` issuing the same
 * commands and scripts, on a `redis-server` this bench starts (as the tests
 * do). Ours: one `ManagedRuntime` over `RedisStore.layer()` +
 * `NodeCrypto.layerEphemeral`, one `runtime.runPromise` per operation. The
 * baseline: a `new Redis(url)` connection with the layer's own ioredis
 * settings (`clientOptions`: command timeout, no offline queue, and
 * auto-pipelining, on both sides) sending the same `HMGET`, `HGET` and
 * `EVALSHA` of the same Lua scripts (from `src/layers/redis/lua.ts`; ours
 * sends `EVALSHA` too), after the same `node:crypto` work (HMAC-SHA256 lookup
 * hash, AES-256-GCM seal, random id) and a plain `JSON.parse` of what comes
 * back. So the ratio is the cost of Effect, the typed checks of what is read
 * (a corrupt record is a `StoreError`, where the baseline trusts it) and the
 * store's bookkeeping, not of Redis or of hashing. Each side has its own key
 * prefix.
 *
 * The same work on both sides, row by row (issue 14: a ratio against the
 * wrong baseline steers the wrong way):
 * - `SessionStore.get`: `HMGET` of the same fields, the liveness check, and
 *   the touch script when 10 s have passed since the session's last write
 *   (each side reads its own 1,000 sessions round-robin, so both touch at
 *   the same rate).
 * - `saveCode + consumeCode`: two operations, so two HMACs of the code on
 *   both sides (the baseline hashed once until issue 14's Redis pass), and ours
 *   enters the runtime twice.
 * - `create` at capacity: both read the evicted session out of the script's
 *   reply (the baseline ignored it until issue 14's Redis pass).
 * - `rotateRefreshToken`: two HMACs, the seal of the new pair, the script,
 *   the previous record parsed.
 *
 * Every operation is measured sequentially and with 50 in flight, each
 * operation entering the runtime with its own `runPromise`. The reference
 * rows put that in proportion: Effect's floor, `runPromise` around one raw
 * `HGET` with no store code at all.
 */
import { Effect, Exit, Layer, ManagedRuntime, Redacted, Scope } from "effect"
import { Redis } from "ioredis"
import { createCipheriv, createHmac, createSecretKey, randomBytes } from "node:crypto"
import { acquireRedisServer, freshPrefix } from "../test/support/redisServer.ts"
import { Keys } from "../src/internal/keys.ts"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import * as RedisStore from "../src/layers/redis/index.ts"
import { clientOptions } from "../src/layers/redis/client.ts"
import * as Lua from "../src/layers/redis/lua.ts"
import type { AccessTokenRecord, IssuedPair } from "../src/schema/token.ts"
import { SessionStore } from "../src/services/SessionStore.ts"
import { TokenStore } from "../src/services/TokenStore.ts"
import { type Case, formatTable, register, type RunOptions, runCases } from "./harness.ts"
import { accessTokenInput, at, codeInput } from "./fixtures.ts"

const SESSIONS = 10_000 // the default global session limit: creates run at capacity
const READ_SESSIONS = 1_000
const ACCESS_TOKENS = 10_000
const CHAINS = 1_000 // refresh chains rotated round-robin: 50 in flight never share one
const IN_FLIGHT = 50
const DAY = 86_400_000
const TOUCH_INTERVAL = 10_000

const options: RunOptions = { rounds: 7, roundMs: 300, warmupMs: 200 }
/** Issue 14's aim (ours/baseline ops/s), sequential and with 50 in flight alike. */
const AIM = 0.8

// ---------------------------------------------------------------------------
// The baseline's pieces: what NodeCrypto computes, with node:crypto directly

const hashKey = createSecretKey(randomBytes(32))
const rawHash = (secret: string): string => createHmac("sha256", hashKey).update(secret, "utf8").digest("base64url")
const rawRandomToken = (): string => randomBytes(32).toString("base64url")
const sealKey = createSecretKey(randomBytes(32))
/** AES-256-GCM with a random IV and AAD, as a `Crypto` envelope is sealed. */
const rawSeal = (plaintext: string, aad: string): string => {
  const iv = randomBytes(12)
  const cipher = createCipheriv("aes-256-gcm", sealKey, iv, { authTagLength: 16 })
  cipher.setAAD(Buffer.from(aad, "utf8"))
  const sealed = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final(), cipher.getAuthTag()])
  return `v1.k.${iv.toString("base64url")}.${sealed.toString("base64url")}`
}



const pair = (label: string): IssuedPair => ({
  refreshToken: Redacted.make(`rt-${label}-${"x".repeat(24)}`),
  accessToken: Redacted.make(`at-${label}-${"y".repeat(24)}`)
})

const SESSION_FIELDS = ["d", "k", "i", "pv", "ci", "la", "ie", "ae"]


/** Run `n` async jobs with at most `width` at once. */
const fill = async (n: number, width: number, job: (i: number) => Promise<unknown>): Promise<void> => {
  let next = 0
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) await job(next++)
  }))
}

// ---------------------------------------------------------------------------

const run = async (): Promise<string> => {
  const scope = Effect.runSync(Scope.make())
  try {
    const server = await Effect.runPromise(Scope.extend(acquireRedisServer, scope))
    const oursPrefix = freshPrefix()
    const rawPrefix = freshPrefix()
    const runtime = ManagedRuntime.make(
      RedisStore.layer({ url: server.url, keyPrefix: oursPrefix }).pipe(Layer.provideMerge(NodeCrypto.layerEphemeral))
    )
    // The same connection settings as the layer's (timeouts, auto-pipelining): the ratio is our code's cost.
    const raw = new Redis(server.url, { ...clientOptions({ url: server.url }), lazyConnect: false })
    try {
      const sessions = await runtime.runPromise(SessionStore)
      const tokens = await runtime.runPromise(TokenStore)
      await Promise.all(Lua.all.map((script) => raw.script("LOAD", script.lua)))
      const evalsha = (script: Lua.Script, ...args: Array<string | number>) => raw.evalsha(script.sha, 0, rawPrefix, ...args)

      // --- sessions to read, on both sides ----------------------------------
      const ourSessionIds: Array<string> = []
      await fill(READ_SESSIONS, IN_FLIGHT, async (i) => {
        const { session } = await runtime.runPromise(sessions.create({ apiKey: `read-key-${i}`, initialized: true }))
        ourSessionIds.push(session.id)
      })
      /** A session from its hash fields (`SESSION_FIELDS` order), as the baseline reads one: JSON.parse and numbers. */
      const rawSession = (f: ReadonlyArray<string | null>) => ({
        ...JSON.parse(f[0] as string),
        initialized: f[2] === "1",
        lastAccessedAt: Number(f[5]),
        idleExpiresAt: Number(f[6]),
        absoluteExpiresAt: Number(f[7])
      })
      /** The baseline's create: the same script, fields built by hand, the evicted sessions read from the reply. */
      const rawCreate = (apiKey: string) => {
        const apiKeyHash = rawHash(apiKey)
        const id = rawRandomToken()
        const now = Date.now()
        const ae = now + 7 * DAY
        const ie = now + DAY
        return evalsha(
          Lua.createSession,
          id,
          now,
          5,
          SESSIONS,
          apiKeyHash,
          ie,
          "d",
          JSON.stringify({ id, apiKeyHash, createdAt: now }),
          "k",
          apiKeyHash,
          "i",
          "1",
          "la",
          now,
          "ie",
          ie,
          "ae",
          ae
        ).then((reply) => ({
          id,
          evicted: (reply as Array<[string, Array<string | null>]>).map(([reason, f]) => ({ reason, session: rawSession(f) }))
        }))
      }
      const rawSessionIds: Array<string> = []
      await fill(READ_SESSIONS, IN_FLIGHT, async (i) => rawSessionIds.push((await rawCreate(`read-key-${i}`)).id))

      /** The baseline's get: HMGET, liveness, and the same throttled touch script. */
      const rawSessionGet = async (id: string) => {
        const f = await raw.hmget(rawPrefix + Keys.session(id), ...SESSION_FIELDS)
        if (f[0] === null) return undefined
        const session = rawSession(f)
        const now = Date.now()
        if (now >= Math.min(session.idleExpiresAt, session.absoluteExpiresAt)) return undefined
        if (now - session.lastAccessedAt < TOUCH_INTERVAL) return session
        const ie = Math.min(now + DAY, session.absoluteExpiresAt)
        await evalsha(Lua.touchSession, id, now, ie, Math.min(ie, session.absoluteExpiresAt))
        return { ...session, lastAccessedAt: now, idleExpiresAt: ie }
      }

      // --- access tokens ----------------------------------------------------
      const accessTokens = Array.from({ length: ACCESS_TOKENS }, () => rawRandomToken())
      await fill(ACCESS_TOKENS, IN_FLIGHT, (i) =>
        runtime.runPromise(tokens.saveAccessToken(accessTokens[i] as string, accessTokenInput(i))))
      await fill(ACCESS_TOKENS, IN_FLIGHT, (i) => {
        const now = Date.now()
        const record = { ...accessTokenInput(i), createdAt: now, expiresAt: now + 7 * DAY }
        return evalsha(
          Lua.putMember,
          Keys.accessToken(rawHash(accessTokens[i] as string)),
          now,
          record.expiresAt,
          record.grantId,
          "r",
          JSON.stringify(record)
        )
      })
      const rawGetAccess = async (token: string) => {
        const json = await raw.hget(rawPrefix + Keys.accessToken(rawHash(token)), "r")
        if (json === null) return undefined
        const record = JSON.parse(json) as AccessTokenRecord
        return Date.now() < record.expiresAt ? record : undefined
      }

      // --- codes --------------------------------------------------------------
      const codeSecret = (i: number) => `code-${i}-Jx1uQeVh2hU0pQnSx7gkY3tAc9b`
      // Two calls, as ours are: each hashes the code it is given.
      const rawSaveConsume = async (code: string) => {
        const hash = rawHash(code)
        const now = Date.now()
        const { ttl: _ttl, ...fields } = codeInput
        const record = { ...fields, createdAt: now, expiresAt: now + 60_000 }
        await evalsha(Lua.putMember, Keys.code(hash), now, record.expiresAt, record.grantId, "r", JSON.stringify(record))
        const reply = await evalsha(Lua.consumeCode, Keys.code(rawHash(code)), Date.now()) as Array<string>
        return reply[0] === "C" ? JSON.parse(reply[1] as string) : reply
      }

      // --- sessions at capacity: both sides filled to the global limit --------
      await fill(SESSIONS - READ_SESSIONS, IN_FLIGHT, (i) => runtime.runPromise(sessions.create({ apiKey: `fill-${i}` })))
      await fill(SESSIONS - READ_SESSIONS, IN_FLIGHT, (i) => rawCreate(`fill-${i}`))

      // --- refresh chains: CHAINS heads per side, rotated round-robin ---------
      const ourHeads = Array.from({ length: CHAINS }, (_, c) => `our-chain-${c}-0`)
      const rawHeads = Array.from({ length: CHAINS }, (_, c) => `raw-chain-${c}-0`)
      await fill(CHAINS, IN_FLIGHT, (c) =>
        runtime.runPromise(tokens.saveRefreshToken(ourHeads[c] as string, {
          grantId: `chain-${c}`,
          clientId: "client-1",
          subject: "user-1",
          scopes: ["read"]
        })))
      await fill(CHAINS, IN_FLIGHT, (c) => {
        const now = Date.now()
        const absolute = now + 90 * DAY
        return evalsha(
          Lua.putMember,
          Keys.refreshToken(rawHash(rawHeads[c] as string)),
          now,
          now + 30 * DAY,
          `chain-${c}`,
          "b",
          JSON.stringify({
            grantId: `chain-${c}`,
            familyId: `chain-${c}`,
            clientId: "client-1",
            subject: "user-1",
            scopes: ["read"],
            absoluteExpiresAt: absolute
          }),
          "n",
          0,
          "c",
          now,
          "ax",
          absolute
        )
      })
      const rotateOurs = async (i: number) => {
        const c = i % CHAINS
        // One pair per rotation, as the baseline builds (it built two until issue 14's second Redis pass).
        const next = pair(`our-chain-${c}-${i}`)
        const result = await runtime.runPromise(tokens.rotateRefreshToken(ourHeads[c] as string, next))
        if (result._tag !== "Rotated") throw new Error(`ours: ${result._tag}`)
        ourHeads[c] = Redacted.value(next.refreshToken)
      }
      const rotateRaw = async (i: number) => {
        const c = i % CHAINS
        const next = pair(`raw-chain-${c}-${i}`)
        const nextToken = Redacted.value(next.refreshToken)
        const hash = rawHash(rawHeads[c] as string)
        const sealed = rawSeal(
          JSON.stringify({ refreshToken: nextToken, accessToken: Redacted.value(next.accessToken) }),
          Keys.refreshSuccessor(hash)
        )
        const reply = await evalsha(
          Lua.rotateRefresh,
          Keys.refreshToken(hash),
          Keys.refreshToken(rawHash(nextToken)),
          Date.now(),
          30_000,
          30 * DAY,
          sealed
        ) as Array<string>
        if (reply[0] !== "R") throw new Error(`raw: ${reply[0]}`)
        rawHeads[c] = nextToken
        return { previous: JSON.parse(reply[1] as string), generation: Number(reply[2]) + 1 }
      }

      const accessKey = (j: number) => rawPrefix + Keys.accessToken(rawHash(at(accessTokens, j)))

      const both = (c: Omit<Case, "concurrency">): Array<Case> => [c, { ...c, concurrency: IN_FLIGHT }]
      /** A store row: aimed, sequential and concurrent. */
      const aimed = (c: Omit<Case, "concurrency" | "aim">): Array<Case> => both({ ...c, aim: AIM })
      const cases: Array<Case> = [
        ...both({
          name: "reference: runPromise(Effect.async(HGET)) vs HGET (Effect's floor)",
          ours: (i) =>
            runtime.runPromise(Effect.async<string | null>((resume) => {
              raw.hget(accessKey(i), "r").then((v) => resume(Effect.succeed(v)), (e) => resume(Effect.die(e)))
            })),
          baseline: (i) => raw.hget(accessKey(i), "r")
        }),
        ...aimed({
          name: "SessionStore.get (HMGET; touch script once per 10 s)",
          ours: (i) => runtime.runPromise(sessions.get(at(ourSessionIds, i))),
          baseline: (i) => rawSessionGet(at(rawSessionIds, i))
        }),
        ...aimed({
          name: `TokenStore.getAccessToken (HGET, among ${ACCESS_TOKENS.toLocaleString("en-US")})`,
          ours: (i) => runtime.runPromise(tokens.getAccessToken(at(accessTokens, i * 7919))),
          baseline: (i) => rawGetAccess(at(accessTokens, i * 7919))
        }),
        ...aimed({
          name: "TokenStore.saveCode + consumeCode (2 scripts)",
          ours: async (i) => {
            const code = codeSecret(i)
            await runtime.runPromise(tokens.saveCode(code, codeInput))
            return runtime.runPromise(tokens.consumeCode(code))
          },
          baseline: (i) => rawSaveConsume(`raw-${codeSecret(i)}`)
        }),
        ...aimed({
          name: `SessionStore.create at capacity (${SESSIONS.toLocaleString("en-US")}, evicts 1; 1 script)`,
          ours: (i) => runtime.runPromise(sessions.create({ apiKey: `new-key-${i}`, initialized: true })),
          baseline: (i) => rawCreate(`new-key-${i}`)
        }),
        ...aimed({
          name: "TokenStore.rotateRefreshToken (1 script + seal)",
          ours: rotateOurs,
          baseline: rotateRaw
        })
      ]

      const rows = await runCases(cases, options)
      return formatTable("Redis stores: one ManagedRuntime, runPromise per op, vs raw ioredis, same commands and scripts", rows, options)
    } finally {
      raw.disconnect()
      await runtime.dispose()
    }
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

register({ name: "redis", run })
