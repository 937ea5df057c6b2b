import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { Crypto } from "../../src/services/Crypto.ts"
import { RawStorage } from "../../src/services/RawStorage.ts"
import { SessionStore } from "../../src/services/SessionStore.ts"
import * as F from "./fixtures.ts"
import { advance, type Backend, everyMinute, concurrently, isAtomic, using } from "./harness.ts"

const SECOND = 1_000
const HOUR = 3_600_000
const DAY = 24 * HOUR

/** The `SessionStore` contract. */
export const sessionStoreContract = (backend: Backend) =>
  describe(`SessionStore contract: ${backend.name}`, () => {
    it.effect("creates a session with a fresh id and the MCP state given", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* SessionStore
        const { evicted, session } = yield* store.create({
          apiKey: "key-a",
          subject: "user-1",
          protocolVersion: "2025-06-18",
          clientInfo: { name: "inspector", version: "1.0.0" }
        })
        expect(evicted).toEqual([])
        expect(session).toMatchObject({ initialized: false, subject: "user-1", protocolVersion: "2025-06-18", createdAt: 0 })
        expect(session.id.length).toBeGreaterThanOrEqual(32)
        const other = yield* store.create({ apiKey: "key-a" })
        expect(other.session.id).not.toBe(session.id)
        expect(Option.getOrThrow(yield* store.get(session.id))).toEqual(session)
        const updated = yield* store.update(session.id, { initialized: true, protocolVersion: "2025-11-25" })
        expect(Option.getOrThrow(updated)).toMatchObject({ initialized: true, protocolVersion: "2025-11-25" })
        expect(Option.getOrThrow(yield* store.get(session.id)).initialized).toBe(true)
        expect(Option.isNone(yield* store.update("missing", { initialized: true }))).toBe(true)
        expect(yield* store.delete(session.id)).toBe(true)
        expect(yield* store.delete(session.id)).toBe(false)
        expect(Option.isNone(yield* store.get(session.id))).toBe(true)
      })))

    it.effect("the idle TTL is 24 hours and slides with access", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* SessionStore
        const { session } = yield* store.create({ apiKey: "key-a" })
        const { session: untouched } = yield* store.create({ apiKey: "key-b" })
        yield* advance(DAY - 1)
        const touched = Option.getOrThrow(yield* store.get(session.id))
        expect(touched.lastAccessedAt).toBe(DAY - 1)
        expect(touched.idleExpiresAt).toBe(2 * DAY - 1)
        yield* advance(1)
        expect(Option.isNone(yield* store.get(untouched.id))).toBe(true)
        yield* advance(DAY - 2)
        expect(Option.isSome(yield* store.get(session.id))).toBe(true)
      })))

    it.effect("an idle session expires at the exact instant", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* SessionStore
        const { session } = yield* store.create({ apiKey: "key-a" })
        const { session: other } = yield* store.create({ apiKey: "key-a" })
        yield* advance(DAY - 1)
        expect(Option.isSome(yield* store.get(session.id))).toBe(true)
        yield* advance(1)
        expect(Option.isNone(yield* store.get(other.id))).toBe(true)
      })))

    it.effect("the absolute lifetime ends a session however often it is used", () =>
      using(backend, { sessions: { absoluteTtl: "2 days" } })(Effect.gen(function*() {
        const store = yield* SessionStore
        const { session } = yield* store.create({ apiKey: "key-a" })
        expect(session.absoluteExpiresAt).toBe(2 * DAY)
        for (let hour = 0; hour < 47; hour++) {
          yield* advance(HOUR)
          expect(Option.isSome(yield* store.get(session.id))).toBe(true)
        }
        yield* advance(HOUR - 1)
        const last = Option.getOrThrow(yield* store.get(session.id))
        expect(last.idleExpiresAt).toBe(2 * DAY)
        yield* advance(1)
        expect(Option.isNone(yield* store.get(session.id))).toBe(true)
      })))

    it.effect("touch writes are throttled to one per touch interval", () =>
      using(backend, { sessions: { touchInterval: "10 seconds" } })(Effect.gen(function*() {
        const store = yield* SessionStore
        const { session } = yield* store.create({ apiKey: "key-a" })
        yield* advance(10 * SECOND - 1)
        expect(Option.getOrThrow(yield* store.get(session.id)).lastAccessedAt).toBe(0)
        yield* advance(1)
        expect(Option.getOrThrow(yield* store.get(session.id)).lastAccessedAt).toBe(10 * SECOND)
        yield* advance(5 * SECOND)
        expect(Option.getOrThrow(yield* store.get(session.id)).lastAccessedAt).toBe(10 * SECOND)
      })))

    it.effect("the sweep removes expired sessions without any read", () =>
      using(backend, { ...everyMinute, sessions: { idleTtl: "5 minutes" } })(Effect.gen(function*() {
        const store = yield* SessionStore
        const raw = yield* RawStorage
        const { session } = yield* store.create({ apiKey: "key-a" })
        expect((yield* raw.dump).some((row) => row.includes(session.id))).toBe(true)
        yield* advance(5 * 60 * SECOND + 61 * SECOND)
        expect((yield* raw.dump).some((row) => row.includes(session.id))).toBe(false)
      })))

    it.effect("lists a key's live sessions, least recently accessed first", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* SessionStore
        const a = (yield* store.create({ apiKey: "key-a" })).session
        yield* advance(SECOND)
        const b = (yield* store.create({ apiKey: "key-a" })).session
        yield* store.create({ apiKey: "key-b" })
        yield* advance(20 * SECOND)
        yield* store.get(a.id)
        expect((yield* store.listByApiKey("key-a")).map((s) => s.id)).toEqual([b.id, a.id])
        expect(yield* store.listByApiKey("key-none")).toEqual([])
      })))

    it.effect("a sixth session of one key evicts that key's least recently accessed", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* SessionStore
        const ids: Array<string> = []
        for (let i = 0; i < 5; i++) {
          ids.push((yield* store.create({ apiKey: "key-a" })).session.id)
          yield* advance(20 * SECOND)
        }
        yield* store.create({ apiKey: "key-b" })
        // Touch the oldest: the second-created becomes the least recently accessed.
        yield* store.get(ids[0] as string)
        yield* advance(20 * SECOND)
        const sixth = yield* store.create({ apiKey: "key-a" })
        expect(sixth.evicted.map((e) => [e.session.id, e.reason])).toEqual([[ids[1], "PerKeyLimit"]])
        expect(Option.isNone(yield* store.get(ids[1] as string))).toBe(true)
        expect((yield* store.listByApiKey("key-a")).length).toBe(5)
        expect((yield* store.listByApiKey("key-b")).length).toBe(1)
      })))

    it.effect("the per-key limit is configurable", () =>
      using(backend, { sessions: { maxPerKey: 2 } })(Effect.gen(function*() {
        const store = yield* SessionStore
        const first = (yield* store.create({ apiKey: "key-a" })).session
        yield* advance(20 * SECOND)
        yield* store.create({ apiKey: "key-a" })
        const third = yield* store.create({ apiKey: "key-a" })
        expect(third.evicted.map((e) => e.session.id)).toEqual([first.id])
      })))

    it.effect("past the global limit, the least recently accessed session anywhere is evicted", () =>
      using(backend, { sessions: { maxSessions: 3 } })(Effect.gen(function*() {
        const store = yield* SessionStore
        const a = (yield* store.create({ apiKey: "key-a" })).session
        yield* advance(20 * SECOND)
        const b = (yield* store.create({ apiKey: "key-b" })).session
        yield* advance(20 * SECOND)
        const c = (yield* store.create({ apiKey: "key-c" })).session
        yield* advance(20 * SECOND)
        yield* store.get(a.id)
        yield* advance(20 * SECOND)
        const d = yield* store.create({ apiKey: "key-d" })
        expect(d.evicted.map((e) => [e.session.id, e.reason])).toEqual([[b.id, "GlobalLimit"]])
        yield* advance(20 * SECOND)
        const e = yield* store.create({ apiKey: "key-e" })
        expect(e.evicted.map((x) => x.session.id)).toEqual([c.id])
        expect(Option.isSome(yield* store.get(a.id))).toBe(true)
        expect(Option.isNone(yield* store.get(b.id))).toBe(true)
      })))

    it.effect.skipIf(!isAtomic(backend, "sessionLimits"))("50 concurrent creates for one key keep exactly 5", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* SessionStore
        const created = yield* concurrently(50, () => store.create({ apiKey: "key-a" }))
        expect(created.reduce((n, c) => n + c.evicted.length, 0)).toBe(45)
        expect((yield* store.listByApiKey("key-a")).length).toBe(5)
      })))

    it.effect("API keys are held only as hashes", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* SessionStore
        const crypto = yield* Crypto
        const apiKey = F.secret("api-key")
        const { session } = yield* store.create({ apiKey })
        expect(session.apiKeyHash).toBe(yield* crypto.hash(apiKey))
        const all = (yield* Effect.flatMap(RawStorage, (raw) => raw.dump)).join("\n")
        expect(all).toContain(session.apiKeyHash)
        expect(all).not.toContain(apiKey)
      })))
  })
