/**
 * What every `McpEventStore` backend shares: stream and event ids, the
 * per-stream TTL, sealing messages to their stream, and turning the events a
 * backend read back into a replay.
 */
import { Duration, Effect, Option } from "effect"
import type { Crypto } from "../services/Crypto.ts"
import type { McpStreamReplay, OpenStreamOptions } from "../services/McpEventStore.ts"
import { StoreError } from "../services/StoreError.ts"
import { Keys } from "./keys.ts"

/** Random bytes in a stream id: 128 bits, 22 base64url characters. */
export const STREAM_ID_BYTES = 16

const STREAM_ID = /^[A-Za-z0-9_-]{22}$/
/** `<streamId>.<sequence>`; the sequence stays a safe integer (15 digits). */
const EVENT_ID = /^([A-Za-z0-9_-]{22})\.(0|[1-9][0-9]{0,14})$/

/** Whether `id` can be a stream id this store issued (anything else is unknown without asking the backend). */
export const isStreamId = (id: string): boolean => STREAM_ID.test(id)

/** The SSE event id of the `sequence`-th event of a stream. */
export const eventId = (streamId: string, sequence: number): string => `${streamId}.${sequence}`

/** A parsed event id: its stream and the sequence number of the event in it. */
export interface EventPosition {
  readonly streamId: string
  readonly sequence: number
}

/** Read an event id back; `None` when it is not one this store could have issued. */
export const parseEventId = (id: string): Option.Option<EventPosition> => {
  const match = EVENT_ID.exec(id)
  return match === null ? Option.none() : Option.some({ streamId: match[1] as string, sequence: Number(match[2]) })
}

/** A fresh random stream id. */
export const newStreamId = (crypto: Crypto.Service): Effect.Effect<string> => crypto.randomToken(STREAM_ID_BYTES)

/** A stream's TTL in whole milliseconds: `options.ttl`, else `fallback`; `Invalid` unless positive and finite. */
export const streamTtl = (
  options: OpenStreamOptions | undefined,
  fallback: number,
  method: string
): Effect.Effect<number, StoreError> =>
  Effect.suspend(() => {
    if (options?.ttl === undefined) return Effect.succeed(fallback)
    const decoded = Duration.decodeUnknown(options.ttl)
    const millis = Option.isSome(decoded) ? Math.ceil(Duration.toMillis(decoded.value)) : Number.NaN
    return Number.isFinite(millis) && millis > 0
      ? Effect.succeed(millis)
      : Effect.fail(new StoreError({ reason: "Invalid", method, description: "stream TTL must be a positive, finite duration" }))
  })

/** Seal a message for storage, bound to its stream (an envelope copied to another stream does not open). */
export const sealMessage = (
  crypto: Crypto.Service,
  streamId: string,
  message: string,
  method: string
): Effect.Effect<string, StoreError> =>
  Effect.mapError(crypto.encrypt(message, Keys.mcpStream(streamId)), (error) => new StoreError({ ...error, method }))

/** One event as a backend stores it: its sequence number and sealed message. */
export interface StoredEvent {
  readonly sequence: number
  readonly envelope: string
}

/**
 * The replay of the events after `after` in a stream whose last sequence is
 * `lastSequence`, from the events the backend still holds after `after`
 * (ascending). Truncated when the first of them is not the one right after
 * `after`: the window dropped some the client has not seen.
 */
export const toReplay = (
  crypto: Crypto.Service,
  streamId: string,
  after: number,
  lastSequence: number,
  stored: ReadonlyArray<StoredEvent>,
  method: string
): Effect.Effect<McpStreamReplay, StoreError> =>
  Effect.map(
    Effect.forEach(stored, (event) =>
      Effect.map(
        Effect.mapError(crypto.decrypt(event.envelope, Keys.mcpStream(streamId)), (error) => new StoreError({ ...error, method })),
        (message) => ({ id: eventId(streamId, event.sequence), message })
      )),
    (events) => ({
      streamId,
      events,
      truncated: after < lastSequence && stored[0]?.sequence !== after + 1
    })
  )
