/**
 * The Redis `McpEventBus` and `McpEventStore` beyond their contracts (run in
 * `redis.test.ts`): two instances on one Redis (two layers, two connections,
 * as two server processes), the storage layout, the one lazily opened
 * subscriber connection, malformed channel messages, and outages of a real
 * `redis-server` (stopped, then started again).
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Context, Effect, Exit, Layer, Logger, Option, Queue, Schedule, type Scope } from "effect"
import { Redis } from "ioredis"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import { Keys } from "../src/internal/keys.ts"
import { generateKey } from "../src/layers/crypto/keyring.ts"
import * as RedisStore from "../src/layers/redis/index.ts"
import type { McpEvent } from "../src/schema/mcpEvent.ts"
import type { Crypto } from "../src/services/Crypto.ts"
import { McpEventBus } from "../src/services/McpEventBus.ts"
import { McpEventStore } from "../src/services/McpEventStore.ts"
import { StoreError } from "../src/services/StoreError.ts"
import { acquireRedisServer, cleanupPrefix, freshPrefix, hasRedisServer, useRedis } from "./support/redis.ts"

const server = useRedis()

type Instance = Context.Context<RedisStore.RedisStores | Crypto>

const OWNER = "sub:user-1|client:client-1"

/** Log lines of a build, collected for assertions. */
const collectLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ message }) => {
    lines.push(Array.isArray(message) ? message.join(" ") : String(message))
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}

/**
 * Two server instances on one Redis: two independent layers (two
 * connections each once subscribed), one key prefix, the same configured keys.
 */
const twoInstances = (
  url: string,
  options: Omit<RedisStore.RedisOptions, "url" | "keyPrefix"> = {},
  logs: Layer.Layer<never> = Layer.empty
): Effect.Effect<readonly [Instance, Instance, string], unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const activeKey = yield* generateKey
    const keyPrefix = freshPrefix()
    if (server.external) yield* Layer.build(cleanupPrefix(url, keyPrefix))
    const instance = () =>
      Layer.build(
        RedisStore.layer({ sweepInterval: "1 day", ...options, url, keyPrefix }).pipe(
          Layer.provideMerge(NodeCrypto.layer({ activeKey })),
          Layer.provide(logs)
        )
      )
    return [yield* instance(), yield* instance(), keyPrefix] as const
  })

/** A plain connection for looking at (and writing to) Redis directly. */
const rawRedis = (url: string) =>
  Effect.acquireRelease(Effect.sync(() => new Redis(url)), (redis) => Effect.sync(() => redis.disconnect()))

const takeWithin = (queue: Queue.Dequeue<McpEvent>, millis: number) =>
  Effect.timeout(Queue.take(queue), millis).pipe(Effect.option)

const reasonOf = (exit: Exit.Exit<unknown, unknown>): string | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const failure = Cause.failureOption(exit.cause)
  return Option.isSome(failure) && failure.value instanceof StoreError ? failure.value.reason : "not a StoreError"
}

const numsub = (redis: Redis, channel: string) =>
  Effect.promise(async () => Number((await redis.pubsub("NUMSUB", channel))[1]))

describe("redis: McpEventBus across instances", () => {
  it.scopedLive("a subscription on A receives what B publishes, and B's own subscription too, in one order", () =>
    Effect.gen(function*() {
      const [a, b] = yield* twoInstances(server.url())
      const busA = Context.get(a, McpEventBus)
      const busB = Context.get(b, McpEventBus)
      const onA = yield* busA.subscribe
      const onB = yield* busB.subscribe
      const sent: Array<McpEvent> = [
        { _tag: "ToolsListChanged" },
        { _tag: "ResourceUpdated", uri: "file:///a" },
        { _tag: "PromptsListChanged" },
        { _tag: "ResourcesListChanged" }
      ]
      for (const [i, event] of sent.entries()) yield* (i % 2 === 0 ? busB : busA).publish(event)
      const take = (queue: Queue.Dequeue<McpEvent>) =>
        Effect.all(sent.map(() => Effect.timeoutFail(Queue.take(queue), { duration: "5 seconds", onTimeout: () => new Error("missing") })))
      expect(yield* take(onA)).toEqual(sent)
      expect(yield* take(onB)).toEqual(sent)
    }))

  it.scopedLive("one subscriber connection per layer, opened at the first subscription, closed with the layer", () =>
    Effect.gen(function*() {
      const redis = yield* rawRedis(server.url())
      const [a, , keyPrefix] = yield* twoInstances(server.url())
      const channel = keyPrefix + Keys.mcpEventChannel
      const busA = Context.get(a, McpEventBus)
      expect(yield* numsub(redis, channel)).toBe(0)
      yield* Effect.scoped(Effect.gen(function*() {
        yield* busA.subscribe
        yield* busA.subscribe
        yield* busA.subscribe
        expect(yield* numsub(redis, channel)).toBe(1)
        expect(yield* busA.subscriptions).toBe(3)
      }))
      // the subscriptions ended; the connection stays for the next ones
      expect(yield* busA.subscriptions).toBe(0)
      expect(yield* numsub(redis, channel)).toBe(1)

      // a layer of its own, released: its connection goes with it
      const channelC = yield* Effect.scoped(Effect.gen(function*() {
        const [c, , prefixC] = yield* twoInstances(server.url())
        yield* Context.get(c, McpEventBus).subscribe
        expect(yield* numsub(redis, prefixC + Keys.mcpEventChannel)).toBe(1)
        return prefixC + Keys.mcpEventChannel
      }))
      expect(yield* numsub(redis, channelC)).toBe(0)
    }))

  it.scopedLive("messages on the channel that are not events are logged and dropped; the subscription goes on", () =>
    Effect.gen(function*() {
      const logs = collectLogs()
      const redis = yield* rawRedis(server.url())
      const [a, b, keyPrefix] = yield* twoInstances(server.url(), {}, logs.layer)
      const onA = yield* Context.get(a, McpEventBus).subscribe
      const channel = keyPrefix + Keys.mcpEventChannel
      for (const junk of ["not json", "{\"_tag\":\"Nope\"}", "{\"_tag\":\"ResourceUpdated\"}", "[]"]) {
        yield* Effect.promise(() => redis.publish(channel, junk))
      }
      yield* Context.get(b, McpEventBus).publish({ _tag: "ToolsListChanged" })
      expect(yield* takeWithin(onA, 5_000)).toEqual(Option.some({ _tag: "ToolsListChanged" }))
      expect(yield* Queue.size(onA)).toBe(0)
      expect(logs.lines.filter((line) => line.startsWith("dropped a message on the event channel"))).toHaveLength(4)
    }))
})

describe("redis: McpEventStore across instances", () => {
  it.scopedLive("a stream opened on A takes appends from B and replays on either", () =>
    Effect.gen(function*() {
      const [a, b] = yield* twoInstances(server.url())
      const storeA = Context.get(a, McpEventStore)
      const storeB = Context.get(b, McpEventStore)
      const streamId = yield* storeA.openStream(OWNER)
      const first = Option.getOrThrow(yield* storeB.append(streamId, "one"))
      yield* storeA.append(streamId, "two")
      const replay = Option.getOrThrow(yield* storeB.replay(first, OWNER))
      expect(replay.events).toEqual([{ id: `${streamId}.2`, message: "two" }])
      expect(Option.isNone(yield* storeA.replay(first, "sub:someone-else|client:client-1"))).toBe(true)
    }))

  it.scopedLive("100 concurrent appends split across both: distinct sequence numbers 1..100", () =>
    Effect.gen(function*() {
      const [a, b] = yield* twoInstances(server.url())
      const stores = [Context.get(a, McpEventStore), Context.get(b, McpEventStore)] as const
      const streamId = yield* stores[0].openStream(OWNER)
      const appended = yield* Effect.all(
        Array.from({ length: 100 }, (_, i) => Effect.map(stores[i % 2]!.append(streamId, `m-${i}`), Option.getOrThrow)),
        { concurrency: "unbounded" }
      )
      const sequences = appended.map((id) => Number(id.slice(streamId.length + 1))).sort((x, y) => x - y)
      expect(sequences).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
      const replay = Option.getOrThrow(yield* stores[1].replay(`${streamId}.0`, OWNER))
      const sent = new Map(appended.map((id, i) => [id, `m-${i}`]))
      expect(replay.events.map((e) => e.id)).toEqual(sequences.map((n) => `${streamId}.${n}`))
      for (const event of replay.events) expect(event.message).toBe(sent.get(event.id))
    }))

  it.scopedLive("a stream is one hash under the prefix, with native PX expiry and its place in the expiry index", () =>
    Effect.gen(function*() {
      const redis = yield* rawRedis(server.url())
      const [a, , keyPrefix] = yield* twoInstances(server.url(), { eventStore: { maxEventsPerStream: 3 } })
      const store = Context.get(a, McpEventStore)
      const streamId = yield* store.openStream(OWNER)
      for (let i = 1; i <= 5; i++) yield* store.append(streamId, `secret-message-${i}`)
      const key = keyPrefix + Keys.mcpStream(streamId)
      const hash = yield* Effect.promise(() => redis.hgetall(key))
      expect(Object.keys(hash).sort()).toEqual(["e3", "e4", "e5", "f", "o", "s", "t", "x"])
      expect(hash).toMatchObject({ s: "5", f: "3", t: String(5 * 60_000) })
      expect(JSON.stringify(hash)).not.toContain("secret-message")
      expect(JSON.stringify(hash)).not.toContain("user-1")
      const pttl = yield* Effect.promise(() => redis.pttl(key))
      expect(pttl).toBeGreaterThan(4 * 60_000)
      expect(pttl).toBeLessThanOrEqual(5 * 60_000)
      expect(yield* Effect.promise(() => redis.zscore(keyPrefix + Keys.expiries, Keys.mcpStream(streamId)))).not.toBeNull()
    }))
})

describe.skipIf(!hasRedisServer)("redis: McpEventBus and McpEventStore outages", () => {
  /** Retry `effect` every 100 ms for up to ~10 s (real time). */
  const untilItWorks = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.retry(effect, Schedule.spaced("100 millis").pipe(Schedule.intersect(Schedule.recurs(100))))

  it.live("Redis stopped: publish and append fail with Unavailable; restarted: the subscriber connection subscribes again", () =>
    Effect.gen(function*() {
      const own = yield* acquireRedisServer
      const logs = collectLogs()
      const [a, b] = yield* twoInstances(own.url, { commandTimeout: "500 millis" }, logs.layer)
      const busA = Context.get(a, McpEventBus)
      const busB = Context.get(b, McpEventBus)
      const onA = yield* busA.subscribe
      const store = Context.get(b, McpEventStore)
      const streamId = yield* store.openStream(OWNER)

      yield* own.stop
      expect(reasonOf(yield* Effect.exit(busB.publish({ _tag: "ToolsListChanged" })))).toBe("Unavailable")
      expect(reasonOf(yield* Effect.exit(store.append(streamId, "during the outage")))).toBe("Unavailable")
      expect(reasonOf(yield* Effect.exit(store.openStream(OWNER)))).toBe("Unavailable")
      // a subscription taken during the outage is local: it already has its connection
      const alsoOnA = yield* busA.subscribe

      yield* own.start
      // once B's connection and A's subscription are back, an event from B reaches A
      const arrived = yield* untilItWorks(Effect.flatMap(busB.publish({ _tag: "PromptsListChanged" }), () =>
        Effect.flatMap(takeWithin(onA, 200), (event) => Option.isSome(event) ? Effect.succeed(event.value) : Effect.fail("not yet"))))
      expect(arrived).toEqual({ _tag: "PromptsListChanged" })
      yield* busB.publish({ _tag: "ResourceUpdated", uri: "file:///after" })
      expect(yield* takeWithin(onA, 5_000)).toEqual(Option.some({ _tag: "ResourceUpdated", uri: "file:///after" }))
      const onAlso = yield* Queue.takeAll(alsoOnA)
      expect([...onAlso].at(-1)).toEqual({ _tag: "ResourceUpdated", uri: "file:///after" })
      // the restarted server is empty: the stream is gone, a new one works
      expect(Option.isNone(yield* store.append(streamId, "after"))).toBe(true)
      const fresh = yield* store.openStream(OWNER)
      expect(Option.isSome(yield* store.append(fresh, "after"))).toBe(true)
      expect(logs.lines.filter((line) => line.startsWith("event subscription lost"))).toHaveLength(1)
      expect(logs.lines.filter((line) => line.startsWith("event subscription restored"))).toHaveLength(1)
    }).pipe(Effect.scoped))

  it.live("the first subscription of an instance while Redis is down fails with Unavailable; the next one, once it is back, works", () =>
    Effect.gen(function*() {
      const own = yield* acquireRedisServer
      const [a, b] = yield* twoInstances(own.url, { commandTimeout: "500 millis", connectTimeout: "1 second" })
      yield* own.stop
      expect(reasonOf(yield* Effect.exit(Effect.scoped(Context.get(a, McpEventBus).subscribe)))).toBe("Unavailable")
      expect(yield* Context.get(a, McpEventBus).subscriptions).toBe(0)
      yield* own.start
      const onA = yield* untilItWorks(Context.get(a, McpEventBus).subscribe)
      yield* untilItWorks(Context.get(b, McpEventBus).publish({ _tag: "ToolsListChanged" }))
      expect(yield* takeWithin(onA, 5_000)).toEqual(Option.some({ _tag: "ToolsListChanged" }))
    }).pipe(Effect.scoped))
})
