import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Option, Queue, Scope } from "effect"
import type { McpEvent } from "../../src/schema/mcpEvent.ts"
import type { StoreOptions } from "../../src/schema/options.ts"
import { McpEventBus } from "../../src/services/McpEventBus.ts"

/** An implementation of the `McpEventBus` port under test: a fresh, isolated build per test. */
export interface McpEventBusBackend {
  readonly name: string
  readonly make: (options?: StoreOptions) => Layer.Layer<McpEventBus, unknown>
}

const using = (backend: McpEventBusBackend, options: StoreOptions = {}) =>
<A, E>(body: Effect.Effect<A, E, McpEventBus | Scope.Scope>): Effect.Effect<A, unknown> =>
  Effect.scoped(Effect.provide(body, Layer.fresh(backend.make({ sweepInterval: "1 day", ...options }))))

const events: ReadonlyArray<McpEvent> = [
  { _tag: "ToolsListChanged" },
  { _tag: "PromptsListChanged" },
  { _tag: "ResourcesListChanged" },
  { _tag: "ResourceUpdated", uri: "file:///project/readme.md" }
]

const updated = (n: number): McpEvent => ({ _tag: "ResourceUpdated", uri: `mem://r/${n}` })

/** Take `n` events, failing the test (not hanging) if they do not all arrive. */
const takeN = (queue: Queue.Dequeue<McpEvent>, n: number) =>
  Effect.timeoutFail(
    Effect.all(Array.from({ length: n }, () => Queue.take(queue))),
    { duration: "5 seconds", onTimeout: () => new Error(`fewer than ${n} events arrived`) }
  )

/**
 * The `McpEventBus` contract: every subscription receives every event
 * published after it subscribed, in order; a subscription ends with its
 * scope; a subscription that never takes neither blocks publishers nor the
 * other subscriptions (it loses its own oldest events).
 */
export const mcpEventBusContract = (backend: McpEventBusBackend) =>
  describe(`McpEventBus contract: ${backend.name}`, () => {
    it.live("every subscription receives every event published after it subscribed, in order", () =>
      using(backend)(Effect.gen(function*() {
        const bus = yield* McpEventBus
        yield* bus.publish({ _tag: "ToolsListChanged" }) // before anyone listens: reaches no one
        const a = yield* bus.subscribe
        const b = yield* bus.subscribe
        for (const event of events) yield* bus.publish(event)
        expect(yield* takeN(a, events.length)).toEqual(events)
        expect(yield* takeN(b, events.length)).toEqual(events)
        expect(yield* Queue.size(a)).toBe(0)
        // a late subscriber sees only what comes after it
        const late = yield* bus.subscribe
        yield* bus.publish(updated(1))
        expect(yield* takeN(late, 1)).toEqual([updated(1)])
        expect(yield* takeN(a, 1)).toEqual([updated(1)])
      })))

    it.live("a subscription ends with its scope", () =>
      using(backend)(Effect.gen(function*() {
        const bus = yield* McpEventBus
        expect(yield* bus.subscriptions).toBe(0)
        const scope = yield* Scope.make()
        const queue = yield* Scope.extend(bus.subscribe, scope)
        const other = yield* bus.subscribe
        expect(yield* bus.subscriptions).toBe(2)
        yield* Scope.close(scope, Exit.void)
        expect(yield* bus.subscriptions).toBe(1)
        expect(yield* Queue.isShutdown(queue)).toBe(true)
        yield* bus.publish(updated(1))
        expect(yield* takeN(other, 1)).toEqual([updated(1)])
        // many short-lived subscriptions leave nothing behind
        yield* Effect.forEach(Array.from({ length: 200 }), () => Effect.scoped(bus.subscribe), { discard: true })
        expect(yield* bus.subscriptions).toBe(1)
      })))

    it.live("a subscription that never takes blocks neither publishers nor other subscriptions; it keeps only the newest", () =>
      using(backend, { eventBus: { bufferSize: 16 } })(Effect.gen(function*() {
        const bus = yield* McpEventBus
        const stuck = yield* bus.subscribe
        const live = yield* bus.subscribe
        const received: Array<McpEvent> = []
        for (let i = 0; i < 500; i++) {
          yield* bus.publish(updated(i))
          received.push(...(yield* takeN(live, 1)))
        }
        expect(received).toEqual(Array.from({ length: 500 }, (_, i) => updated(i)))
        // the stuck one holds the 16 newest: its oldest were dropped, nobody waited for it
        expect(yield* Queue.takeAll(stuck).pipe(Effect.map((chunk) => [...chunk]))).toEqual(
          Array.from({ length: 16 }, (_, i) => updated(484 + i))
        )
        yield* bus.publish(updated(500))
        expect(yield* takeN(stuck, 1)).toEqual([updated(500)])
        expect(yield* takeN(live, 1)).toEqual([updated(500)])
        expect(Option.isNone(yield* Queue.poll(live))).toBe(true)
      })))
  })
