import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Option } from "effect"
import type { StoreOptions } from "../../src/schema/options.ts"
import type { Crypto } from "../../src/services/Crypto.ts"
import { McpEventStore, type McpStreamReplay } from "../../src/services/McpEventStore.ts"
import { RawStorage } from "../../src/services/RawStorage.ts"
import { StoreError } from "../../src/services/StoreError.ts"
import { advance, concurrently } from "./harness.ts"

/** An implementation of the `McpEventStore` port under test: a fresh, isolated build per test. */
export interface McpEventStoreBackend {
  readonly name: string
  readonly make: (options?: StoreOptions) => Layer.Layer<McpEventStore | RawStorage | Crypto, unknown>
  /** Whether the backend bounds the number of streams (`maxStreams`: the memory backends). */
  readonly boundsStreams: boolean
}

type Services = McpEventStore | RawStorage | Crypto

const using = (backend: McpEventStoreBackend, options: StoreOptions = {}) =>
<A, E>(body: Effect.Effect<A, E, Services>): Effect.Effect<A, unknown> =>
  Effect.scoped(Effect.provide(body, Layer.fresh(backend.make({ sweepInterval: "1 day", ...options }))))

const SECOND = 1_000
const MINUTE = 60 * SECOND
const OWNER = "sub:user-1|client:client-1"

/** A JSON-RPC message carrying a recognisable secret. */
const message = (n: number | string) =>
  JSON.stringify({ jsonrpc: "2.0", id: n, result: { content: [{ type: "text", text: `tool-result-${n}-s3cr3t-payload` }] } })

const ids = (replay: Option.Option<McpStreamReplay>) => Option.getOrThrow(replay).events.map((event) => event.id)

const sequences = (eventIds: ReadonlyArray<string>) => eventIds.map((id) => Number(id.slice(id.lastIndexOf(".") + 1)))

const append = (store: McpEventStore.Service, streamId: string, text: string) =>
  Effect.map(store.append(streamId, text), Option.getOrThrow)

/**
 * The `McpEventStore` contract: event ids, replay after an id, the owner
 * check, bounds, sliding expiry and the sweep (by `TestClock`), sealed
 * storage, and numbering under concurrent appends.
 */
export const mcpEventStoreContract = (backend: McpEventStoreBackend) =>
  describe(`McpEventStore contract: ${backend.name}`, () => {
    it.effect("appends get ids <streamId>.<n> in order; a replay returns the events after the given id", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* McpEventStore
        const streamId = yield* store.openStream(OWNER)
        expect(streamId).toMatch(/^[A-Za-z0-9_-]{22}$/)
        const first = yield* append(store, streamId, message(1))
        const second = yield* append(store, streamId, message(2))
        const third = yield* append(store, streamId, message(3))
        expect([first, second, third]).toEqual([`${streamId}.1`, `${streamId}.2`, `${streamId}.3`])

        const replay = Option.getOrThrow(yield* store.replay(first, OWNER))
        expect(replay).toEqual({
          streamId,
          events: [{ id: second, message: message(2) }, { id: third, message: message(3) }],
          truncated: false
        })
        expect(Option.getOrThrow(yield* store.replay(third, OWNER)).events).toEqual([])
        // `.0` is the position before the first event: everything
        expect(ids(yield* store.replay(`${streamId}.0`, OWNER))).toEqual([first, second, third])
        // the stream goes on after a replay
        expect(yield* append(store, streamId, message(4))).toBe(`${streamId}.4`)
      })))

    it.effect("streams are independent: fresh random ids, their own numbering, their own events", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* McpEventStore
        const a = yield* store.openStream(OWNER)
        const b = yield* store.openStream(OWNER)
        expect(a).not.toBe(b)
        yield* append(store, a, message("a1"))
        yield* append(store, a, message("a2"))
        expect(yield* append(store, b, message("b1"))).toBe(`${b}.1`)
        expect(Option.getOrThrow(yield* store.replay(`${b}.0`, OWNER)).events).toEqual([{ id: `${b}.1`, message: message("b1") }])
        expect(Option.getOrThrow(yield* store.replay(`${a}.1`, OWNER)).events.map((e) => e.message)).toEqual([message("a2")])
      })))

    it.effect("only the owner replays; unknown, malformed and never-issued ids give None", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* McpEventStore
        const streamId = yield* store.openStream(OWNER)
        const first = yield* append(store, streamId, message(1))
        expect(Option.isNone(yield* store.replay(first, "sub:user-2|client:client-1"))).toBe(true)
        expect(Option.isNone(yield* store.replay(first, "sub:user-1|client:client-2"))).toBe(true)
        expect(Option.isSome(yield* store.replay(first, OWNER))).toBe(true)

        const unknown = "AAAAAAAAAAAAAAAAAAAAAA"
        for (const id of ["", "garbage", streamId, `${streamId}.`, `${streamId}.-1`, `${streamId}.01`, `${streamId}.1.1`, `${unknown}.1`, `${streamId}.2`]) {
          expect(Option.isNone(yield* store.replay(id, OWNER)), id).toBe(true)
        }
        expect(Option.isNone(yield* store.append(unknown, message(1)))).toBe(true)
        expect(Option.isNone(yield* store.append("not a stream id", message(1)))).toBe(true)
      })))

    it.effect("a closed stream is gone: no replay, no append", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* McpEventStore
        const raw = yield* RawStorage
        const streamId = yield* store.openStream(OWNER)
        const first = yield* append(store, streamId, message(1))
        expect(yield* store.closeStream(streamId)).toBe(true)
        expect(yield* store.closeStream(streamId)).toBe(false)
        expect(Option.isNone(yield* store.replay(first, OWNER))).toBe(true)
        expect(Option.isNone(yield* store.append(streamId, message(2)))).toBe(true)
        expect((yield* raw.dump).some((row) => row.includes(streamId))).toBe(false)
      })))

    it.effect("bounded: a stream keeps its last maxEventsPerStream events; a replay from before the window says truncated", () =>
      using(backend, { eventStore: { maxEventsPerStream: 5 } })(Effect.gen(function*() {
        const store = yield* McpEventStore
        const streamId = yield* store.openStream(OWNER)
        for (let i = 1; i <= 8; i++) yield* append(store, streamId, message(i))
        const fromStart = Option.getOrThrow(yield* store.replay(`${streamId}.0`, OWNER))
        expect(sequences(fromStart.events.map((e) => e.id))).toEqual([4, 5, 6, 7, 8])
        expect(fromStart.events.map((e) => e.message)).toEqual([4, 5, 6, 7, 8].map(message))
        expect(fromStart.truncated).toBe(true)
        expect(Option.getOrThrow(yield* store.replay(`${streamId}.2`, OWNER)).truncated).toBe(true)
        const inWindow = Option.getOrThrow(yield* store.replay(`${streamId}.3`, OWNER))
        expect(sequences(inWindow.events.map((e) => e.id))).toEqual([4, 5, 6, 7, 8])
        expect(inWindow.truncated).toBe(false)
        expect(Option.getOrThrow(yield* store.replay(`${streamId}.8`, OWNER))).toMatchObject({ events: [], truncated: false })
      })))

    it.effect("the default window is 100 events", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* McpEventStore
        const streamId = yield* store.openStream(OWNER)
        for (let i = 1; i <= 101; i++) yield* append(store, streamId, message(i))
        const replay = Option.getOrThrow(yield* store.replay(`${streamId}.0`, OWNER))
        expect(replay.events.length).toBe(100)
        expect(replay.events[0]?.id).toBe(`${streamId}.2`)
        expect(replay.truncated).toBe(true)
        expect(Option.getOrThrow(yield* store.replay(`${streamId}.1`, OWNER)).truncated).toBe(false)
      })))

    it.effect("expires 5 minutes after the last append or replay (by the Clock)", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* McpEventStore
        const streamId = yield* store.openStream(OWNER)
        yield* advance(4 * MINUTE)
        const first = yield* append(store, streamId, message(1)) // slides to 9 min
        yield* advance(5 * MINUTE - 1)
        expect(Option.isSome(yield* store.replay(first, OWNER))).toBe(true) // slides to 14 min - 1 ms
        yield* advance(5 * MINUTE - 1)
        expect(Option.isSome(yield* store.append(streamId, message(2)))).toBe(true) // slides to 19 min - 2 ms
        yield* advance(5 * MINUTE)
        expect(Option.isNone(yield* store.replay(first, OWNER))).toBe(true)
        expect(Option.isNone(yield* store.append(streamId, message(3)))).toBe(true)
      })))

    it.effect("a stream's own TTL; an invalid TTL is refused with Invalid", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* McpEventStore
        const short = yield* store.openStream(OWNER, { ttl: "1 minute" })
        const long = yield* store.openStream(OWNER, { ttl: "1 hour" })
        yield* append(store, short, message(1))
        yield* append(store, long, message(1))
        yield* advance(MINUTE)
        expect(Option.isNone(yield* store.replay(`${short}.0`, OWNER))).toBe(true)
        yield* advance(58 * MINUTE)
        expect(Option.isSome(yield* store.replay(`${long}.0`, OWNER))).toBe(true)
        for (const ttl of [0, -5, Number.NaN, Infinity] as const) {
          const exit = yield* Effect.exit(store.openStream(OWNER, { ttl }))
          const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
          expect(Option.isSome(error) && error.value instanceof StoreError && error.value.reason).toBe("Invalid")
        }
      })))

    it.effect("the sweep removes expired streams and their events without any read", () =>
      using(backend, { sweepInterval: "60 seconds" })(Effect.gen(function*() {
        const store = yield* McpEventStore
        const raw = yield* RawStorage
        const expiring = yield* store.openStream(OWNER)
        const kept = yield* store.openStream(OWNER, { ttl: "1 hour" })
        yield* append(store, expiring, message(1))
        yield* append(store, kept, message(1))
        expect((yield* raw.dump).some((row) => row.includes(expiring))).toBe(true)
        yield* advance(5 * MINUTE + 61 * SECOND)
        const rows = yield* raw.dump
        expect(rows.some((row) => row.includes(expiring))).toBe(false)
        expect(rows.some((row) => row.includes(kept))).toBe(true)
      })))

    it.effect("sealed at rest: the store holds neither the messages nor the owner in the clear", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* McpEventStore
        const streamId = yield* store.openStream(OWNER)
        for (let i = 1; i <= 3; i++) yield* append(store, streamId, message(i))
        const rows = (yield* (yield* RawStorage).dump).join("\n")
        expect(rows).toContain(streamId)
        expect(rows).not.toContain("s3cr3t")
        expect(rows).not.toContain("tool-result")
        expect(rows).not.toContain("user-1")
        expect(rows).not.toContain("client-1")
        expect(rows).not.toContain(Buffer.from(message(1)).toString("base64"))
      })))

    it.effect("100 concurrent appends to one stream: distinct sequence numbers 1..100, each with its own message", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* McpEventStore
        const streamId = yield* store.openStream(OWNER)
        const appended = yield* concurrently(100, (i) => append(store, streamId, message(`c${i}`)))
        expect(new Set(appended).size).toBe(100)
        expect(sequences(appended).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
        const replay = Option.getOrThrow(yield* store.replay(`${streamId}.0`, OWNER))
        expect(replay.truncated).toBe(false)
        expect(sequences(replay.events.map((e) => e.id))).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
        const sent = new Map(appended.map((id, i) => [id, message(`c${i}`)]))
        for (const event of replay.events) expect(event.message).toBe(sent.get(event.id))
      })))

    if (backend.boundsStreams) {
      it.effect("at maxStreams, the least recently active stream is evicted", () =>
        using(backend, { eventStore: { maxStreams: 3 } })(Effect.gen(function*() {
          const store = yield* McpEventStore
          const a = yield* store.openStream(OWNER)
          const b = yield* store.openStream(OWNER)
          const c = yield* store.openStream(OWNER)
          yield* append(store, a, message(1)) // a is now the most recently active
          const d = yield* store.openStream(OWNER)
          expect(Option.isNone(yield* store.append(b, message(1)))).toBe(true)
          expect(Option.isNone(yield* store.replay(`${b}.0`, OWNER))).toBe(true)
          for (const live of [a, c, d]) expect(Option.isSome(yield* store.replay(`${live}.0`, OWNER))).toBe(true)
        })))

      it.effect("the default limit is 1,000 streams", () =>
        using(backend)(Effect.gen(function*() {
          const store = yield* McpEventStore
          const opened: Array<string> = []
          for (let i = 0; i < 1_000; i++) opened.push(yield* store.openStream(OWNER))
          const [first, second, third] = opened as [string, string, string]
          expect(Option.isSome(yield* store.replay(`${first}.0`, OWNER))).toBe(true) // now the most recently active
          yield* store.openStream(OWNER)
          expect(Option.isSome(yield* store.replay(`${first}.0`, OWNER))).toBe(true)
          expect(Option.isNone(yield* store.replay(`${second}.0`, OWNER))).toBe(true)
          expect(Option.isSome(yield* store.replay(`${third}.0`, OWNER))).toBe(true)
          expect((yield* (yield* RawStorage).dump).filter((row) => row.startsWith("mcp-stream:")).length).toBe(1_000)
        })))
    }
  })
