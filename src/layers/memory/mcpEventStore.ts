import { Clock, Effect, Option } from "effect"
import { Keys } from "../../internal/keys.ts"
import { LruMap } from "../../internal/lruMap.ts"
import {
  eventId,
  isStreamId,
  newStreamId,
  parseEventId,
  sealMessage,
  type StoredEvent,
  streamTtl,
  toReplay
} from "../../internal/mcpStream.ts"
import { traced } from "../../internal/traced.ts"
import type { ResolvedMcpEventStoreOptions } from "../../schema/options.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { McpEventStore } from "../../services/McpEventStore.ts"

/** One stream in memory (changed in place: only this module holds it). */
interface StreamRecord {
  readonly ownerHash: string
  readonly ttl: number
  expiresAt: number
  lastSequence: number
  /** The retained events, oldest first; at most `maxEventsPerStream`. */
  readonly events: Array<StoredEvent>
}

/**
 * The memory `McpEventStore`: streams in an `LruMap` in order of last
 * activity (open, append, replay), so that at `maxStreams` the least recently
 * active is evicted in O(1). A message is sealed first (the only step that may
 * wait); its sequence number is then taken, and the event stored, in one
 * synchronous step, so concurrent appends are numbered in the order they are
 * stored. Not persisted (the file backend keeps its streams in memory too).
 */
export const makeEventStore = (options: ResolvedMcpEventStoreOptions) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const streams = new LruMap<string, StreamRecord>()

    /** The stream if it is live at `now`; an expired one is dropped on the way. */
    const live = (id: string, now: number): StreamRecord | undefined => {
      const stream = streams.get(id)
      if (stream === undefined) return undefined
      if (stream.expiresAt > now) return stream
      streams.delete(id)
      return undefined
    }

    const service: McpEventStore.Service = {
      openStream: (owner, openOptions) =>
        Effect.gen(function*() {
          const ttl = yield* streamTtl(openOptions, options.streamTtl, "McpEventStore.openStream")
          const ownerHash = yield* crypto.hash(owner)
          const id = yield* newStreamId(crypto)
          const now = yield* Clock.currentTimeMillis
          // At the limit, the least recently active streams make room.
          while (streams.size >= options.maxStreams) if (streams.evictOldest() === undefined) break
          streams.set(id, { ownerHash, ttl, expiresAt: now + ttl, lastSequence: 0, events: [] })
          return id
        }).pipe(traced("McpEventStore.openStream")),

      append: (streamId, message) =>
        (isStreamId(streamId)
          ? Effect.flatMap(sealMessage(crypto, streamId, message, "McpEventStore.append"), (envelope) =>
            Effect.map(Clock.currentTimeMillis, (now) => {
              const stream = live(streamId, now)
              if (stream === undefined) return Option.none<string>()
              const sequence = ++stream.lastSequence
              stream.events.push({ sequence, envelope })
              if (stream.events.length > options.maxEventsPerStream) {
                stream.events.splice(0, stream.events.length - options.maxEventsPerStream)
              }
              stream.expiresAt = now + stream.ttl
              streams.promote(streamId)
              return Option.some(eventId(streamId, sequence))
            }))
          : Effect.succeed(Option.none<string>())).pipe(traced("McpEventStore.append")),

      replay: (lastEventId, owner) =>
        Effect.gen(function*() {
          const position = parseEventId(lastEventId)
          if (Option.isNone(position)) return Option.none()
          const { sequence: after, streamId } = position.value
          const ownerHash = yield* crypto.hash(owner)
          const now = yield* Clock.currentTimeMillis
          const stream = live(streamId, now)
          if (stream === undefined || !crypto.timingSafeEqual(stream.ownerHash, ownerHash) || after > stream.lastSequence) {
            return Option.none()
          }
          stream.expiresAt = now + stream.ttl
          streams.promote(streamId)
          const stored = stream.events.filter((event) => event.sequence > after)
          return Option.some(
            yield* toReplay(crypto, streamId, after, stream.lastSequence, stored, "McpEventStore.replay")
          )
        }).pipe(traced("McpEventStore.replay")),

      closeStream: (streamId) => Effect.sync(() => streams.delete(streamId)).pipe(traced("McpEventStore.closeStream"))
    }

    const sweep = Effect.map(Clock.currentTimeMillis, (now) => {
      let removed = 0
      for (const [id, stream] of streams.entries()) if (stream.expiresAt <= now) (streams.delete(id), removed++)
      return removed
    })

    /** Every stream as held: owner hash, sequence, expiry and sealed events. */
    const dump = Effect.sync((): ReadonlyArray<string> =>
      [...streams.entries()].map(([id, stream]) => `${Keys.mcpStream(id)} ${JSON.stringify(stream)}`)
    )

    return { service, sweep, dump } as const
  })
