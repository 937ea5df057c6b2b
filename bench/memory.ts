/**
 * The memory stores' hot operations, called the way a server calls them: one
 * `ManagedRuntime` over `MemoryStore.layer()` + `NodeCrypto.layerEphemeral`,
 * and one `runtime.runPromise` per operation (the program reads the service
 * from the context, as a handler written with `yield* SessionStore` does);
 * and, to separate the store from the runtime entry, the same reads inside
 * one running Effect.
 *
 * Each sits beside a raw baseline that does the same work without Effect,
 * with the same bookkeeping as our store: sessions in a Map-based LRU with a
 * per-API-key index (the per-key limit, the least recently accessed of a key
 * evicted first, the global limit evicting the oldest), the throttled touch
 * moving a session to the back; access tokens promoted on every read; codes
 * in a bounded LRU with a per-grant index (what `revokeGrant` walks). The
 * same `node:crypto` HMAC-SHA256 of the secret (base64url) and random id that
 * the store computes, and the same `Date.now()` expiry checks. So the ratio is
 * the cost of Effect and of how our store is written, not of hashing or of
 * bookkeeping a raw store would skip.
 *
 * The heap table measures the bytes each session holds: our store filled with
 * 10,000 sessions, against a plain `Map` of the same session objects.
 */
import { Effect, Layer, ManagedRuntime } from "effect"
import { createHmac, createSecretKey, randomBytes } from "node:crypto"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import * as MemoryStore from "../src/layers/memory/index.ts"
import type { AuthorizationCode } from "../src/schema/code.ts"
import type { Session } from "../src/schema/session.ts"
import type { AccessTokenRecord } from "../src/schema/token.ts"
import { SessionStore } from "../src/services/SessionStore.ts"
import { TokenStore } from "../src/services/TokenStore.ts"
import { type Case, formatTable, markdownTable, register, type RunOptions, runCases } from "./harness.ts"
import { accessTokenInput, at, codeInput, shuffled } from "./fixtures.ts"

const SESSIONS = 10_000 // the default global session limit
const PER_KEY = 5 // the default per-key session limit
const ACCESS_TOKENS = 10_000 // the default RS token record limit
const CODES = 1_000 // the default authorization code limit
const GETS_PER_EFFECT = 1_000
/** Issue 14's aims: ours/baseline ops/s, and bytes of heap per session. */
const AIM = 0.25
const HEAP_AIM_BYTES = 400

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
  constructor(private readonly capacity: number, private readonly onEvict: (key: string, value: V) => void = () => {}) {}

  set(key: string, value: V): void {
    this.map.delete(key)
    this.map.set(key, value)
    while (this.map.size > this.capacity) {
      const oldest = this.takeOldest()
      if (oldest === undefined) return
      this.onEvict(oldest[0], oldest[1])
    }
  }

  /** Remove and return the least recent entry (through the long-lived cursor). */
  takeOldest(): readonly [string, V] | undefined {
    let next = this.cursor.next()
    if (next.done === true) {
      this.cursor = this.map.keys()
      next = this.cursor.next()
    }
    if (next.done === true) return undefined
    const value = this.map.get(next.value) as V
    this.map.delete(next.value)
    return [next.value, value]
  }

  /** Move an existing key to the back (most recent). */
  promote(key: string, value: V): void {
    this.map.delete(key)
    this.map.set(key, value)
  }
}

/** A raw session store with our store's bookkeeping: LRU by last access, a per-key index, both limits. */
class RawSessions {
  readonly byKey = new Map<string, Array<string>>()
  readonly lru = new RawLru<Session>(Number.MAX_SAFE_INTEGER)

  private unindex(session: Session): void {
    const ids = this.byKey.get(session.apiKeyHash)
    if (ids === undefined) return
    const at = ids.indexOf(session.id)
    if (at >= 0) ids.splice(at, 1)
    if (ids.length === 0) this.byKey.delete(session.apiKeyHash)
  }

  private remove(session: Session): void {
    this.lru.map.delete(session.id)
    this.unindex(session)
  }

  insert(session: Session): void {
    this.lru.set(session.id, session)
    const ids = this.byKey.get(session.apiKeyHash)
    if (ids === undefined) this.byKey.set(session.apiKeyHash, [session.id])
    else ids.push(session.id)
  }

  get(id: string, now: number): Session | undefined {
    const session = this.lru.map.get(id)
    if (session === undefined) return undefined
    if (now >= Math.min(session.idleExpiresAt, session.absoluteExpiresAt)) {
      this.remove(session)
      return undefined
    }
    if (now - session.lastAccessedAt < TOUCH_INTERVAL) return session
    const touched = { ...session, lastAccessedAt: now, idleExpiresAt: Math.min(now + DAY, session.absoluteExpiresAt) }
    this.lru.promote(id, touched)
    return touched
  }

  create(apiKey: string, initialized: boolean): { session: Session; evicted: Array<Session> } {
    const apiKeyHash = rawHash(apiKey)
    const id = rawRandomToken()
    const now = Date.now()
    const evicted: Array<Session> = []
    const ofKey: Array<Session> = []
    for (const sid of this.byKey.get(apiKeyHash) ?? []) {
      const live = this.lru.map.get(sid)
      if (live !== undefined && now < Math.min(live.idleExpiresAt, live.absoluteExpiresAt)) ofKey.push(live)
      else if (live !== undefined) this.remove(live)
    }
    while (ofKey.length >= PER_KEY) {
      let victim = ofKey[0] as Session
      for (const s of ofKey) if (s.lastAccessedAt < victim.lastAccessedAt) victim = s
      this.remove(victim)
      evicted.push(victim)
      ofKey.splice(ofKey.indexOf(victim), 1)
    }
    while (this.lru.map.size >= SESSIONS) {
      const oldest = this.lru.takeOldest()
      if (oldest === undefined) break
      this.unindex(oldest[1])
      evicted.push(oldest[1])
    }
    const session: Session = {
      id,
      apiKeyHash,
      initialized,
      createdAt: now,
      lastAccessedAt: now,
      idleExpiresAt: now + DAY,
      absoluteExpiresAt: now + 7 * DAY
    }
    this.insert(session)
    return { session, evicted }
  }
}

/** A grant's members (codes, tokens), as `revokeGrant` needs them. */
class RawGrantIndex {
  readonly members = new Map<string, Set<string>>()
  add(grantId: string, key: string): void {
    const set = this.members.get(grantId)
    if (set === undefined) this.members.set(grantId, new Set([key]))
    else set.add(key)
  }
  remove(grantId: string, key: string): void {
    const set = this.members.get(grantId)
    if (set === undefined) return
    set.delete(key)
    if (set.size === 0) this.members.delete(grantId)
  }
}

const randomId = (): string => randomBytes(32).toString("base64url")

const DAY = 86_400_000
const TOUCH_INTERVAL = 10_000

// ---------------------------------------------------------------------------
// Heap per session

/** `gc()`, exposed at run time (`npm run bench` passes no `--expose-gc`). */
const collect = (): (() => void) => {
  setFlagsFromString("--expose-gc")
  return runInNewContext("gc") as () => void
}

/** Heap bytes in use after full collections, once two readings in a row agree within 16 KiB. */
const heapUsed = async (gc: () => void): Promise<number> => {
  // A disposed runtime lets go of its fibers over a few turns: wait, collect, and again until the heap settles.
  let previous = Number.POSITIVE_INFINITY
  for (let round = 0; round < 10; round++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    gc()
    gc()
    const used = process.memoryUsage().heapUsed
    if (Math.abs(previous - used) < 16 * 1024) return used
    previous = used
  }
  return previous
}

interface HeapRow {
  readonly name: string
  readonly ours: number
  readonly baseline: number
}

/**
 * Bytes per session: a fresh store filled with `SESSIONS` sessions, and a
 * plain `Map` of as many session objects with the same fields (a fresh random
 * id and HMAC hash each, as the store makes them), each measured from its
 * own start after a full collection.
 */
const measureHeap = async (): Promise<ReadonlyArray<HeapRow>> => {
  const gc = collect()
  const rows: Array<HeapRow> = []
  // One call per case: an async function's locals stay reachable until it returns, so nothing of one case lingers into the next.
  for (const perKey of [1, PER_KEY]) rows.push(await measureHeapOf(gc, perKey))
  return rows
}

const measureHeapOf = async (gc: () => void, perKey: number): Promise<HeapRow> => {
  const apiKey = (i: number) => `heap-key-${Math.floor(i / perKey)}`
  const runtime = ManagedRuntime.make(MemoryStore.layer().pipe(Layer.provideMerge(NodeCrypto.layerEphemeral)))
  try {
    const store = await runtime.runPromise(SessionStore)
    const before = await heapUsed(gc)
    await runtime.runPromise(Effect.forEach(
      Array.from({ length: SESSIONS }, (_, i) => i),
      (i) => store.create({ apiKey: apiKey(i), initialized: true, protocolVersion: "2025-06-18" }),
      { discard: true }
    ))
    const ours = (await heapUsed(gc) - before) / SESSIONS

    const start = await heapUsed(gc)
    const plain = new Map<string, Session>()
    const now = Date.now()
    for (let i = 0; i < SESSIONS; i++) {
      const id = rawRandomToken()
      plain.set(id, {
        id,
        apiKeyHash: rawHash(apiKey(i)),
        initialized: true,
        protocolVersion: "2025-06-18",
        createdAt: now,
        lastAccessedAt: now,
        idleExpiresAt: now + DAY,
        absoluteExpiresAt: now + 7 * DAY
      })
    }
    const baseline = (await heapUsed(gc) - start) / plain.size
    return { name: `${SESSIONS.toLocaleString("en-US")} sessions, ${perKey} per API key`, ours, baseline }
  } finally {
    await runtime.dispose()
  }
}

const formatHeap = (rows: ReadonlyArray<HeapRow>): string =>
  [
    "## Memory SessionStore: heap per session, ours vs a plain Map of the same session objects",
    "",
    ...markdownTable(
      ["sessions held", "ours B/session", "plain Map B/session", "ratio (ours/Map bytes)", "aim"],
      rows.map((row) => [
        row.name,
        row.ours.toFixed(0),
        row.baseline.toFixed(0),
        (row.ours / row.baseline).toFixed(2),
        `≤ ${HEAP_AIM_BYTES} B ${row.ours <= HEAP_AIM_BYTES ? "ok" : "UNDER"}`
      ])
    ),
    "",
    "Heap in use after full collections (`gc()` exposed at run time; read once two readings agree), before and after filling; ours includes the " +
    "LRU map, the per-key index and the session objects.",
    rows.some((row) => row.ours > HEAP_AIM_BYTES)
      ? `Aims: UNDER (more than ${HEAP_AIM_BYTES} B) for ${rows.filter((row) => row.ours > HEAP_AIM_BYTES).map((row) => row.name).join("; ")}.`
      : `Aims: every row at or below ${HEAP_AIM_BYTES} B per session.`
  ].join("\n")

// ---------------------------------------------------------------------------

const run = async (): Promise<string> => {
  // Heap first, while the process holds nothing else of ours.
  const heapTable = formatHeap(await measureHeap())
  const runtime = ManagedRuntime.make(MemoryStore.layer().pipe(Layer.provideMerge(NodeCrypto.layerEphemeral)))
  let rateTable: string
  try {
    const sessionStore = await runtime.runPromise(SessionStore)
    const tokenStore = await runtime.runPromise(TokenStore)

    // --- SessionStore: both sides filled to the global limit -----------------
    const created = await runtime.runPromise(Effect.forEach(
      Array.from({ length: SESSIONS }, (_, i) => i),
      (i) => sessionStore.create({ apiKey: `api-key-${i}`, initialized: true, protocolVersion: "2025-06-18" })
    ))
    const sessionIds = shuffled(SESSIONS).map((i) => at(created, i).session.id)
    const idBatches = Array.from({ length: 10 }, (_, b) => sessionIds.slice(b * GETS_PER_EFFECT, (b + 1) * GETS_PER_EFFECT))

    const rawSessions = new RawSessions()
    for (const { session } of created) rawSessions.insert({ ...session })
    const getOneSession = (id: string) => Effect.flatMap(SessionStore, (store) => store.get(id))

    // --- TokenStore: 10,000 access-token records on both sides ----------------
    const accessTokens = Array.from({ length: ACCESS_TOKENS }, () => randomId())
    await runtime.runPromise(Effect.forEach(
      accessTokens,
      (token, i) => tokenStore.saveAccessToken(token, accessTokenInput(i)),
      { discard: true }
    ))
    const accessByGrant = new RawGrantIndex()
    const rawAccess = new RawLru<AccessTokenRecord>(ACCESS_TOKENS, (hash, record) => accessByGrant.remove(record.grantId, hash))
    accessTokens.forEach((token, i) => {
      const now = Date.now()
      const hash = rawHash(token)
      const { ttl: _ttl, ...fields } = accessTokenInput(i)
      rawAccess.set(hash, { ...fields, createdAt: now, expiresAt: now + 7 * DAY })
      accessByGrant.add(fields.grantId, hash)
    })
    const lookupOrder = shuffled(ACCESS_TOKENS).map((i) => at(accessTokens, i))

    // --- Codes: fresh code per pair; both sides bounded at 1,000, indexed by grant ---
    interface RawCode {
      readonly code: AuthorizationCode
      consumed: boolean
    }
    const codesByGrant = new RawGrantIndex()
    const rawCodes = new RawLru<RawCode>(CODES, (hash, entry) => codesByGrant.remove(entry.code.grantId, hash))
    const codeSecret = (i: number) => `code-${i}-Jx1uQeVh2hU0pQnSx7gkY3tAc9b`

    const cases: Array<Case> = [
      {
        name: "reference: runPromise(Effect.sync(Map.get)) vs Map.get (the runtime entry alone)",
        ours: (i) => runtime.runPromise(Effect.sync(() => rawSessions.lru.map.get(at(sessionIds, i)))),
        baseline: (i) => rawSessions.lru.map.get(at(sessionIds, i))
      },
      {
        name: "SessionStore.get (existing, within touch interval)",
        ours: (i) => runtime.runPromise(getOneSession(at(sessionIds, i))),
        baseline: (i) => rawSessions.get(at(sessionIds, i), Date.now()),
        aim: AIM
      },
      {
        name: `${GETS_PER_EFFECT} SessionStore.get in one Effect (op = ${GETS_PER_EFFECT} gets)`,
        ours: (i) =>
          runtime.runPromise(Effect.flatMap(SessionStore, (store) =>
            Effect.forEach(at(idBatches, i), (id) => store.get(id), { discard: true }))),
        baseline: (i) => {
          for (const id of at(idBatches, i)) rawSessions.get(id, Date.now())
        },
        aim: AIM
      },
      {
        name: `TokenStore.getAccessToken (among ${ACCESS_TOKENS.toLocaleString("en-US")}, promoted on read)`,
        ours: (i) => runtime.runPromise(Effect.flatMap(TokenStore, (store) => store.getAccessToken(at(lookupOrder, i)))),
        baseline: (i) => {
          const hash = rawHash(at(lookupOrder, i))
          const record = rawAccess.map.get(hash)
          if (record === undefined) return undefined
          if (Date.now() >= record.expiresAt) {
            rawAccess.map.delete(hash)
            accessByGrant.remove(record.grantId, hash)
            return undefined
          }
          rawAccess.promote(hash, record)
          return record
        },
        aim: AIM
      },
      {
        name: "TokenStore.saveCode + consumeCode (2 calls)",
        ours: async (i) => {
          const code = codeSecret(i)
          await runtime.runPromise(Effect.flatMap(TokenStore, (store) => store.saveCode(code, codeInput)))
          return runtime.runPromise(Effect.flatMap(TokenStore, (store) => store.consumeCode(code)))
        },
        baseline: (i) => {
          const code = codeSecret(i)
          const saved = Date.now()
          const { ttl: _ttl, ...fields } = codeInput
          const record: AuthorizationCode = { ...fields, createdAt: saved, expiresAt: saved + 60_000 }
          const savedHash = rawHash(code)
          rawCodes.set(savedHash, { code: record, consumed: false })
          codesByGrant.add(record.grantId, savedHash)
          const hash = rawHash(code)
          const entry = rawCodes.map.get(hash)
          if (entry === undefined) return "NotFound"
          if (Date.now() >= entry.code.expiresAt) {
            rawCodes.map.delete(hash)
            codesByGrant.remove(entry.code.grantId, hash)
            return "NotFound"
          }
          if (entry.consumed) return "Replayed"
          entry.consumed = true
          return entry.code
        },
        aim: AIM
      },
      {
        name: `SessionStore.create at capacity (${SESSIONS.toLocaleString("en-US")}, evicts 1)`,
        ours: (i) =>
          runtime.runPromise(Effect.flatMap(SessionStore, (store) => store.create({ apiKey: `new-api-key-${i}`, initialized: false }))),
        baseline: (i) => rawSessions.create(`new-api-key-${i}`, false),
        aim: AIM
      },
      {
        name: `SessionStore.create at capacity, ${PER_KEY} per key (evicts the key's least recent)`,
        ours: (i) =>
          runtime.runPromise(Effect.flatMap(SessionStore, (store) => store.create({ apiKey: `busy-key-${i % 100}`, initialized: false }))),
        baseline: (i) => rawSessions.create(`busy-key-${i % 100}`, false),
        aim: AIM
      }
    ]

    const rows = await runCases(cases, options)
    rateTable = formatTable(
      "Memory stores: one ManagedRuntime, runPromise per op, vs a raw Map store with the same bookkeeping + node:crypto",
      rows,
      options
    )
  } finally {
    await runtime.dispose()
  }
  return [rateTable, "", heapTable].join("\n")
}

register({ name: "memory", run })
