import { Effect, Either, Runtime, Schema, Scope } from "effect"
import type { Redis } from "ioredis"
import { Keys } from "../../internal/keys.ts"
import { makeLocalEventBus } from "../../internal/localEventBus.ts"
import { McpEvent } from "../../schema/mcpEvent.ts"
import type { McpEventBus } from "../../services/McpEventBus.ts"
import { StoreError } from "../../services/StoreError.ts"
import { type RedisClient, storeError, traced } from "./client.ts"

const McpEventJson = Schema.parseJson(McpEvent)
const encodeEvent = Schema.encodeEither(McpEventJson)
const decodeEvent = Schema.decodeUnknownEither(McpEventJson)

/**
 * The Redis `McpEventBus`: `PUBLISH` of the event's JSON on one channel
 * (`<prefix>mcp-events`) through the layer's connection, and one subscriber
 * connection per layer (a `duplicate()` of it) that fans what it receives out
 * to this instance's subscriptions through a local sliding `PubSub`. Every
 * instance, the publisher included, delivers an event when it comes back from
 * Redis, so all of them see the same order.
 *
 * - The subscriber connection opens at the first `subscribe` (an instance
 *   that never serves a listen stream never opens it) and closes with the
 *   layer. If Redis cannot be reached then, that `subscribe` fails with
 *   `StoreError` `Unavailable` and the next one tries again.
 * - Outages: `publish` fails with `Unavailable` while Redis is down; the
 *   subscriber connection reconnects on its own and ioredis subscribes again
 *   once it is back (events published in between are not delivered: at most
 *   once).
 * - A message on the channel that is not an `McpEvent` is logged and dropped.
 */
export const makeEventBus = (client: RedisClient, bufferSize: number): Effect.Effect<McpEventBus.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const local = yield* makeLocalEventBus(bufferSize)
    const layerScope = yield* Effect.scope
    const runtime = yield* Effect.runtime<never>()
    const runFork = Runtime.runFork(runtime)
    const runSync = Runtime.runSync(runtime)
    const log = (effect: Effect.Effect<void>) => runFork(effect.pipe(Effect.annotateLogs("module", "McpEventBus")))
    const channel = client.prefix + Keys.mcpEventChannel

    const onMessage = (from: string, message: string) => {
      if (from !== channel) return
      const decoded = decodeEvent(message)
      if (Either.isLeft(decoded)) {
        log(Effect.logWarning("dropped a message on the event channel that is not an McpEvent").pipe(
          Effect.annotateLogs("error", decoded.left.message)
        ))
        return
      }
      runSync(local.deliver(decoded.right))
    }

    /** Connect the subscriber and subscribe to the channel, or fail and leave nothing behind. */
    const connect = Effect.tryPromise({
      try: async () => {
        const subscriber: Redis = client.redis.duplicate({ lazyConnect: true, enableAutoPipelining: false, autoResubscribe: true })
        let down = false
        let closing = false
        let connected = false
        const markDown = () => {
          // Before the first connection, `subscribe` itself fails: that is not an outage.
          if (down || closing || !connected) return
          down = true
          log(Effect.logWarning("event subscription lost: events published until Redis is back are not delivered"))
        }
        subscriber.on("error", markDown)
        subscriber.on("close", markDown)
        subscriber.on("ready", () => {
          connected = true
          if (!down) return
          down = false
          log(Effect.logInfo("event subscription restored"))
        })
        subscriber.on("message", onMessage)
        const close = async (): Promise<void> => {
          closing = true
          await subscriber.quit().then(() => undefined, () => undefined)
          subscriber.disconnect()
        }
        try {
          await subscriber.connect()
          await subscriber.subscribe(channel)
        } catch (error) {
          closing = true
          subscriber.disconnect()
          throw error
        }
        return close
      },
      catch: (error) => storeError("McpEventBus.subscribe", error)
    })

    // Opened once, by the first subscription, in the layer's scope; a failed attempt leaves it closed.
    const gate = yield* Effect.makeSemaphore(1)
    let subscribed = false
    const ensureSubscribed: Effect.Effect<void, StoreError> = Effect.suspend(() =>
      subscribed ? Effect.void : gate.withPermits(1)(Effect.suspend(() =>
        subscribed ? Effect.void : Effect.acquireRelease(connect, (close) => Effect.promise(close)).pipe(
          Scope.extend(layerScope),
          Effect.tap(() => {
            subscribed = true
          })
        )
      ))
    )

    return {
      publish: (event) =>
        Either.match(encodeEvent(event), {
          onLeft: (error) =>
            Effect.fail(new StoreError({ reason: "Invalid", method: "McpEventBus.publish", description: "not an McpEvent", cause: error })),
          onRight: (json) => Effect.asVoid(client.call("McpEventBus.publish", (redis) => redis.publish(channel, json)))
        }).pipe(traced("McpEventBus.publish")),
      subscribe: Effect.zipRight(ensureSubscribed, local.service.subscribe),
      subscriptions: local.service.subscriptions
    } satisfies McpEventBus.Service
  })
