import { Clock, Effect, Option } from "effect"
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
import { StoreError } from "../../services/StoreError.ts"
import { type Db, traced } from "./db.ts"
import type { Tables } from "./tables.ts"

interface SequenceRow {
  readonly last_seq: unknown
}

interface EventRow {
  readonly seq: unknown
  readonly envelope: unknown
}

/** Streams deleted per sweep transaction (with up to `maxEventsPerStream` events each). */
const SWEEP_STREAMS = 50

const corrupt = (method: string) => new StoreError({ reason: "Corrupt", method, description: "stored row does not decode" })

const sequenceOf = (rows: ReadonlyArray<SequenceRow>, method: string): Effect.Effect<Option.Option<number>, StoreError> => {
  const row = rows[0]
  if (row === undefined) return Effect.succeed(Option.none())
  return typeof row.last_seq === "number" ? Effect.succeed(Option.some(row.last_seq)) : Effect.fail(corrupt(method))
}

const eventsOf = (rows: ReadonlyArray<EventRow>, method: string): Effect.Effect<ReadonlyArray<StoredEvent>, StoreError> =>
  rows.every((row) => typeof row.seq === "number" && typeof row.envelope === "string")
    ? Effect.succeed(rows.map((row) => ({ sequence: row.seq as number, envelope: row.envelope as string })))
    : Effect.fail(corrupt(method))

/**
 * The SQLite `McpEventStore`: a row per stream (owner hash, last sequence
 * number, TTL, sliding `expires_at`) and a row per retained event. An append
 * is one `BEGIN IMMEDIATE` transaction (take the next sequence number while
 * the stream is live, insert the sealed event, drop what falls out of the
 * window), so appends from every process on the file are numbered in the
 * order they commit. A replay checks the owner and slides the expiry in the
 * same transaction that reads the events.
 */
export const makeEventStore = (db: Db, t: Tables, options: ResolvedMcpEventStoreOptions) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto

    const insertStream = `INSERT INTO ${t.mcpStreams} (id, owner_hash, last_seq, ttl, expires_at) VALUES (?, ?, 0, ?, ?)`
    const nextSequence = `UPDATE ${t.mcpStreams} SET last_seq = last_seq + 1, expires_at = ? + ttl
      WHERE id = ? AND expires_at > ? RETURNING last_seq`
    const insertEvent = `INSERT INTO ${t.mcpStreamEvents} (stream_id, seq, envelope) VALUES (?, ?, ?)`
    const trimEvents = `DELETE FROM ${t.mcpStreamEvents} WHERE stream_id = ? AND seq <= ?`
    const touchOwned = `UPDATE ${t.mcpStreams} SET expires_at = ? + ttl
      WHERE id = ? AND expires_at > ? AND owner_hash = ? AND last_seq >= ? RETURNING last_seq`
    const eventsAfter = `SELECT seq, envelope FROM ${t.mcpStreamEvents} WHERE stream_id = ? AND seq > ? ORDER BY seq`
    const deleteEvents = `DELETE FROM ${t.mcpStreamEvents} WHERE stream_id = ?`
    const deleteStream = `DELETE FROM ${t.mcpStreams} WHERE id = ?`

    const service: McpEventStore.Service = {
      openStream: (owner, openOptions) =>
        Effect.gen(function*() {
          const method = "McpEventStore.openStream"
          const ttl = yield* streamTtl(openOptions, options.streamTtl, method)
          const ownerHash = yield* crypto.hash(owner)
          const id = yield* newStreamId(crypto)
          const now = yield* Clock.currentTimeMillis
          yield* db.run(method, insertStream, [id, ownerHash, ttl, now + ttl])
          return id
        }).pipe(traced("McpEventStore.openStream")),

      append: (streamId, message) =>
        Effect.gen(function*() {
          const method = "McpEventStore.append"
          if (!isStreamId(streamId)) return Option.none()
          const envelope = yield* sealMessage(crypto, streamId, message, method)
          const now = yield* Clock.currentTimeMillis
          const sequence = yield* db.write(
            method,
            Effect.gen(function*() {
              const next = yield* sequenceOf(yield* db.all<SequenceRow>(method, nextSequence, [now, streamId, now]), method)
              if (Option.isNone(next)) return next
              yield* db.run(method, insertEvent, [streamId, next.value, envelope])
              if (next.value > options.maxEventsPerStream) {
                yield* db.run(method, trimEvents, [streamId, next.value - options.maxEventsPerStream])
              }
              return next
            })
          )
          return Option.map(sequence, (n) => eventId(streamId, n))
        }).pipe(traced("McpEventStore.append")),

      replay: (lastEventId, owner) =>
        Effect.gen(function*() {
          const method = "McpEventStore.replay"
          const position = parseEventId(lastEventId)
          if (Option.isNone(position)) return Option.none()
          const { sequence: after, streamId } = position.value
          const ownerHash = yield* crypto.hash(owner)
          const now = yield* Clock.currentTimeMillis
          const read = yield* db.write(
            method,
            Effect.gen(function*() {
              const last = yield* sequenceOf(
                yield* db.all<SequenceRow>(method, touchOwned, [now, streamId, now, ownerHash, after]),
                method
              )
              if (Option.isNone(last)) return Option.none()
              const stored = yield* eventsOf(yield* db.all<EventRow>(method, eventsAfter, [streamId, after]), method)
              return Option.some({ last: last.value, stored })
            })
          )
          if (Option.isNone(read)) return Option.none()
          return Option.some(yield* toReplay(crypto, streamId, after, read.value.last, read.value.stored, method))
        }).pipe(traced("McpEventStore.replay")),

      closeStream: (streamId) =>
        db.write(
          "McpEventStore.closeStream",
          Effect.zipRight(
            db.run("McpEventStore.closeStream", deleteEvents, [streamId]),
            db.run("McpEventStore.closeStream", deleteStream, [streamId])
          )
        ).pipe(Effect.map((deleted) => deleted > 0), traced("McpEventStore.closeStream"))
    }

    return service
  })

/**
 * Delete the expired streams and their events, `SWEEP_STREAMS` streams per
 * transaction (the stream rows and their events go together, so no event
 * outlives its stream and no live stream loses one); the number of streams
 * deleted.
 */
export const sweepStreams = (db: Db, t: Tables): Effect.Effect<number, StoreError> => {
  const method = "SqliteStore.sweep"
  const due = `SELECT id FROM ${t.mcpStreams} WHERE expires_at <= ? ORDER BY expires_at LIMIT ${SWEEP_STREAMS}`
  const batch = (now: number) =>
    db.write(
      method,
      Effect.gen(function*() {
        const ids = (yield* db.all<{ readonly id: unknown }>(method, due, [now])).map((row) => String(row.id))
        if (ids.length === 0) return 0
        const marks = ids.map(() => "?").join(", ")
        yield* db.run(method, `DELETE FROM ${t.mcpStreamEvents} WHERE stream_id IN (${marks})`, ids)
        return yield* db.run(method, `DELETE FROM ${t.mcpStreams} WHERE id IN (${marks})`, ids)
      })
    )
  return Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    let removed = 0
    for (;;) {
      const deleted = yield* batch(now)
      removed += deleted
      if (deleted < SWEEP_STREAMS) return removed
      yield* Effect.yieldNow()
    }
  })
}
