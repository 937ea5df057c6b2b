/**
 * The memory stores' hot operations, called the way a server calls them: one
 * `ManagedRuntime` over `MemoryStore.layer()` + `NodeCrypto.layerEphemeral`,
 * and one `runtime.runPromise` per operation (the program reads the service
 * from the context, as a handler written with `yield* SessionStore` does).
 *
 * Each sits beside a raw baseline that does the same work without Effect: a
 * plain `Map` (a Map-based LRU where the store is at capacity), the same
 * `node:crypto` HMAC-SHA256 of the secret (base64url) and random id that the
 * store computes, and the same `Date.now()` expiry check. So the ratio is the
 * cost of Effect plus the store's own bookkeeping (indexes, LRU moves, spans),
 * not of hashing.
 */
import { Effect, Layer, ManagedRuntime } from "effect"
import { createHmac, createSecretKey, randomBytes } from "node:crypto"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import * as MemoryStore from "../src/layers/memory/index.ts"
import type { AuthorizationCode } from "../src/schema/code.ts"
import type { Session } from "../src/schema/session.ts"
import type { AccessTokenRecord } from "../src/schema/token.ts"
import { SessionStore } from "../src/services/SessionStore.ts"
import { TokenStore } from "../src/services/TokenStore.ts"
import { type Case, formatTable, register, type RunOptions, runCases } from "./harness.ts"
import { accessTokenInput, at, codeInput, shuffled } from "./fixtures.ts"

const SESSIONS = 10_000 // the default global session limit
const ACCESS_TOKENS = 10_000 // the default RS token record limit
const CODES = 1_000 // the default authorization code limit
const GETS_PER_EFFECT = 1_000

const options: RunOptions = { rounds: 9, roundMs: 400, warmupMs: 200 }

// ---------------------------------------------------------------------------
// The raw baseline's pieces

const hashKey = createSecretKey(randomBytes(32))
/** What `NodeCrypto`'s `hash` computes: HMAC-SHA256 under a 32-byte key, base64url. */
const rawHash = (secret: string): string => createHmac("sha256", hashKey).update(secret, "utf8").digest("base64url")
/** What `NodeCrypto`'s `randomToken()` computes. */
const rawRandomToken = (): string => randomBytes(32).toString("base64url")

/**
 * A Map-based LRU bounded at `capacity`, evicting its oldest entry on insert.
 * It evicts through one long-lived iterator, as a careful raw implementation
 * would: a fresh `keys().next()` per eviction walks V8's deleted slots
 * (DEPENDENCIES.md: 57 µs vs 0.75 µs per insert at 100K entries), and a
 * baseline that slow would flatter us.
 */
class RawLru<V> {
  readonly map = new Map<string, V>()
  private cursor: Iterator<string> = this.map.keys()
  constructor(private readonly capacity: number) {}

  set(key: string, value: V): void {
    this.map.delete(key)
    this.map.set(key, value)
    while (this.map.size > this.capacity) {
      let next = this.cursor.next()
      if (next.done === true) {
        this.cursor = this.map.keys()
        next = this.cursor.next()
      }
      if (next.done === true) return
      this.map.delete(next.value)
    }
  }
}

const randomId = (): string => randomBytes(32).toString("base64url")

const DAY = 86_400_000





// ---------------------------------------------------------------------------

const run = async (): Promise<string> => {
  const runtime = ManagedRuntime.make(MemoryStore.layer().pipe(Layer.provideMerge(NodeCrypto.layerEphemeral)))
  try {
    const sessionStore = await runtime.runPromise(SessionStore)
    const tokenStore = await runtime.runPromise(TokenStore)

    // --- SessionStore: both sides filled to the global limit -----------------
    const created = await runtime.runPromise(Effect.forEach(
      Array.from({ length: SESSIONS }, (_, i) => i),
      (i) => sessionStore.create({ apiKey: `api-key-${i}`, initialized: true, protocolVersion: "2025-06-18" })
    ))
    const sessionIds = shuffled(SESSIONS).map((i) => (created[i] as { session: Session }).session.id)
    const idBatches = Array.from({ length: 10 }, (_, b) => sessionIds.slice(b * GETS_PER_EFFECT, (b + 1) * GETS_PER_EFFECT))

    const rawSessions = new RawLru<Session>(SESSIONS)
    for (const { session } of created) rawSessions.set(session.id, { ...session })
    const touchInterval = 10_000
    /** A raw session read: liveness check, and the same throttled touch the store does. */
    const rawSessionGet = (id: string): Session | undefined => {
      const session = rawSessions.map.get(id)
      if (session === undefined) return undefined
      const now = Date.now()
      if (now >= Math.min(session.idleExpiresAt, session.absoluteExpiresAt)) return undefined
      if (now - session.lastAccessedAt < touchInterval) return session
      const touched = { ...session, lastAccessedAt: now, idleExpiresAt: Math.min(now + DAY, session.absoluteExpiresAt) }
      rawSessions.set(id, touched)
      return touched
    }
    const getOneSession = (id: string) => Effect.flatMap(SessionStore, (store) => store.get(id))

    // --- TokenStore: 10,000 access-token records on both sides ----------------
    const accessTokens = Array.from({ length: ACCESS_TOKENS }, () => randomId())
    await runtime.runPromise(Effect.forEach(
      accessTokens,
      (token, i) => tokenStore.saveAccessToken(token, accessTokenInput(i)),
      { discard: true }
    ))
    const rawAccess = new Map<string, AccessTokenRecord>()
    accessTokens.forEach((token, i) => {
      const now = Date.now()
      rawAccess.set(rawHash(token), { ...accessTokenInput(i), createdAt: now, expiresAt: now + 7 * DAY })
    })
    const lookupOrder = shuffled(ACCESS_TOKENS).map((i) => accessTokens[i] as string)

    // --- Codes: fresh code per pair; both sides bounded at 1,000 ---------------
    const rawCodes = new RawLru<{ readonly code: AuthorizationCode; consumed: boolean }>(CODES)
    const codeRecord = codeInput
    const codeSecret = (i: number) => `code-${i}-Jx1uQeVh2hU0pQnSx7gkY3tAc9b`

    const cases: Array<Case> = [
      {
        name: "SessionStore.get (existing, within touch interval)",
        ours: (i) => runtime.runPromise(getOneSession(at(sessionIds, i))),
        baseline: (i) => rawSessionGet(at(sessionIds, i))
      },
      {
        name: `${GETS_PER_EFFECT} SessionStore.get in one Effect (op = ${GETS_PER_EFFECT} gets)`,
        ours: (i) =>
          runtime.runPromise(Effect.flatMap(SessionStore, (store) =>
            Effect.forEach(at(idBatches, i), (id) => store.get(id), { discard: true }))),
        baseline: (i) => {
          for (const id of at(idBatches, i)) rawSessionGet(id)
        }
      },
      {
        name: `TokenStore.getAccessToken (among ${ACCESS_TOKENS.toLocaleString("en-US")})`,
        ours: (i) => runtime.runPromise(Effect.flatMap(TokenStore, (store) => store.getAccessToken(at(lookupOrder, i)))),
        baseline: (i) => {
          const record = rawAccess.get(rawHash(at(lookupOrder, i)))
          return record !== undefined && Date.now() < record.expiresAt ? record : undefined
        }
      },
      {
        name: "TokenStore.saveCode + consumeCode (2 calls)",
        ours: async (i) => {
          const code = codeSecret(i)
          await runtime.runPromise(Effect.flatMap(TokenStore, (store) => store.saveCode(code, codeRecord)))
          return runtime.runPromise(Effect.flatMap(TokenStore, (store) => store.consumeCode(code)))
        },
        baseline: (i) => {
          const code = codeSecret(i)
          const now = Date.now()
          const { ttl: _ttl, ...fields } = codeRecord
          const record: AuthorizationCode = { ...fields, createdAt: now, expiresAt: now + 60_000 }
          rawCodes.set(rawHash(code), { code: record, consumed: false })
          const entry = rawCodes.map.get(rawHash(code))
          if (entry === undefined || Date.now() >= entry.code.expiresAt) return "NotFound"
          if (entry.consumed) return "Replayed"
          entry.consumed = true
          return entry.code
        }
      },
      {
        name: `SessionStore.create at capacity (${SESSIONS.toLocaleString("en-US")}, evicts 1)`,
        ours: (i) =>
          runtime.runPromise(Effect.flatMap(SessionStore, (store) => store.create({ apiKey: `new-api-key-${i}`, initialized: false }))),
        baseline: (i) => {
          const apiKeyHash = rawHash(`new-api-key-${i}`)
          const id = rawRandomToken()
          const now = Date.now()
          const session: Session = {
            id,
            apiKeyHash,
            initialized: false,
            createdAt: now,
            lastAccessedAt: now,
            idleExpiresAt: now + DAY,
            absoluteExpiresAt: now + 7 * DAY
          }
          rawSessions.set(id, session)
          return session
        }
      }
    ]

    const rows = await runCases(cases, options)
    return formatTable("Memory stores: one ManagedRuntime, runPromise per op, vs raw Map + node:crypto", rows, options)
  } finally {
    await runtime.dispose()
  }
}

register({ name: "memory", run })
