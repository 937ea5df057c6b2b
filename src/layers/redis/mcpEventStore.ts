import { Clock, Effect, Either, Option } from "effect"
import { Keys } from "../../internal/keys.ts"
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
import type { ResolvedMcpEventStoreOptions } from "../../schema/options.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { McpEventStore } from "../../services/McpEventStore.ts"
import type { StoreError } from "../../services/StoreError.ts"
import { type RedisClient, traced } from "./client.ts"
import { corrupt, int } from "./codec.ts"
import * as Lua from "./lua.ts"

/** The `replayStream` reply: the last sequence number, then (sequence, envelope) pairs. */
const replayReply = (
  reply: unknown,
  method: string
): Either.Either<{ readonly last: number; readonly stored: ReadonlyArray<StoredEvent> }, StoreError> => {
  if (!Array.isArray(reply) || reply.length % 2 !== 1) return Either.left(corrupt(method))
  const last = int(reply[0])
  const stored: Array<StoredEvent> = []
  for (let i = 1; i < reply.length; i += 2) {
    const sequence = int(reply[i])
    const envelope: unknown = reply[i + 1]
    if (!Number.isSafeInteger(sequence) || typeof envelope !== "string") return Either.left(corrupt(method))
    stored.push({ sequence, envelope })
  }
  return Number.isSafeInteger(last) ? Either.right({ last, stored }) : Either.left(corrupt(method))
}

/**
 * The Redis `McpEventStore`, shared by every instance on the same Redis and
 * prefix: one hash per stream (`<prefix>mcp-stream:<id>`) holding its owner
 * hash, last and first retained sequence numbers, TTL, expiry and the sealed
 * events (`e<n>`), with `PX` and an entry in the expiry index, so the sweep
 * deletes a stream whole. Open, append (number, store, trim, slide) and
 * replay (owner check, read, slide) are one script each, so appends from
 * every instance are numbered atomically.
 */
export const makeEventStore = (client: RedisClient, options: ResolvedMcpEventStoreOptions) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto

    const service: McpEventStore.Service = {
      openStream: (owner, openOptions) =>
        Effect.gen(function*() {
          const method = "McpEventStore.openStream"
          const ttl = yield* streamTtl(openOptions, options.streamTtl, method)
          const ownerHash = yield* crypto.hash(owner)
          const id = yield* newStreamId(crypto)
          const now = yield* Clock.currentTimeMillis
          yield* client.run(method, Lua.openStream, [Keys.mcpStream(id), now, now + ttl, ownerHash, ttl])
          return id
        }).pipe(traced("McpEventStore.openStream")),

      append: (streamId, message) =>
        Effect.gen(function*() {
          const method = "McpEventStore.append"
          if (!isStreamId(streamId)) return Option.none()
          const envelope = yield* sealMessage(crypto, streamId, message, method)
          const now = yield* Clock.currentTimeMillis
          const reply = int(
            yield* client.run(method, Lua.appendStreamEvent, [
              Keys.mcpStream(streamId),
              now,
              envelope,
              options.maxEventsPerStream
            ])
          )
          if (!Number.isSafeInteger(reply)) return yield* Effect.fail(corrupt(method))
          return reply === 0 ? Option.none() : Option.some(eventId(streamId, reply))
        }).pipe(traced("McpEventStore.append")),

      replay: (lastEventId, owner) =>
        Effect.gen(function*() {
          const method = "McpEventStore.replay"
          const position = parseEventId(lastEventId)
          if (Option.isNone(position)) return Option.none()
          const { sequence: after, streamId } = position.value
          const ownerHash = yield* crypto.hash(owner)
          const now = yield* Clock.currentTimeMillis
          const reply = yield* client.run(method, Lua.replayStream, [Keys.mcpStream(streamId), now, ownerHash, after])
          if (reply === null) return Option.none()
          const { last, stored } = yield* replayReply(reply, method)
          return Option.some(yield* toReplay(crypto, streamId, after, last, stored, method))
        }).pipe(traced("McpEventStore.replay")),

      closeStream: (streamId) =>
        client.run("McpEventStore.closeStream", Lua.closeStream, [Keys.mcpStream(streamId)]).pipe(
          Effect.map((deleted) => int(deleted) === 1),
          traced("McpEventStore.closeStream")
        )
    }

    return service
  })
