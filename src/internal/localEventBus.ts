import { Effect, PubSub, type Scope } from "effect"
import type { McpEvent } from "../schema/mcpEvent.ts"
import type { McpEventBus } from "../services/McpEventBus.ts"

/** The in-process fan-out of `McpEventBus` events to this instance's subscriptions. */
export interface LocalEventBus {
  /** The bus as a service: `publish` delivers here only (the memory, file and SQLite backends' bus). */
  readonly service: McpEventBus.Service
  /** Hand an event to every local subscription: never waits, never fails (a shut-down bus drops it). */
  readonly deliver: (event: McpEvent) => Effect.Effect<void>
  /** The underlying `PubSub`: its `size` is the events some subscription has not taken yet. */
  readonly pubsub: PubSub.PubSub<McpEvent>
}

/**
 * A sliding `PubSub` of `bufferSize` events, shut down with the scope (a
 * subscription waiting in `take` is then interrupted). Sliding, not
 * unbounded: a subscription that stops taking (a stuck or abandoned stream)
 * loses its own oldest events once `bufferSize` are waiting for it, while
 * publishers never wait and other subscriptions keep receiving everything;
 * memory stays bounded whatever the subscribers do.
 */
export const makeLocalEventBus = (bufferSize: number): Effect.Effect<LocalEventBus, never, Scope.Scope> =>
  Effect.gen(function*() {
    const pubsub = yield* Effect.acquireRelease(PubSub.sliding<McpEvent>(Math.max(1, bufferSize)), PubSub.shutdown)
    let open = 0

    // After the scope closed, `publish` interrupts: the event is dropped instead.
    const deliver = (event: McpEvent): Effect.Effect<void> => Effect.asVoid(Effect.exit(PubSub.publish(pubsub, event)))

    const service: McpEventBus.Service = {
      publish: deliver,
      subscribe: Effect.zipRight(
        Effect.acquireRelease(Effect.sync(() => open++), () => Effect.sync(() => open--)),
        PubSub.subscribe(pubsub)
      ),
      subscriptions: Effect.sync(() => open)
    }

    return { service, deliver, pubsub }
  })
