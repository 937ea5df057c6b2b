import { Context, type Duration, type Effect, type Option } from "effect"
import type { StoreError } from "./StoreError.ts"

/** One stored event of a resumable stream: its SSE `id` and the JSON-RPC message, as text. */
export interface McpStreamEvent {
  /** `<streamId>.<sequence>`: what the endpoint writes as the SSE `id:` field. */
  readonly id: string
  readonly message: string
}

/** What a reconnecting client missed: the events after its `Last-Event-ID`, in order. */
export interface McpStreamReplay {
  /** The stream the event id belongs to. */
  readonly streamId: string
  /** The events after the given id that the stream still holds, oldest first. */
  readonly events: ReadonlyArray<McpStreamEvent>
  /**
   * `true` when some events after the given id were already dropped from
   * the stream's window (oldest first): `events` does not start right after
   * it, so the client cannot be brought fully up to date.
   */
  readonly truncated: boolean
}

/** Per-stream settings of `openStream`. */
export interface OpenStreamOptions {
  /** How long the stream lives after its last append or replay (default: the store's `streamTtl`, 5 minutes). */
  readonly ttl?: Duration.DurationInput
}

/**
 * The events of resumable SSE streams (`Last-Event-ID`), so that a client
 * that lost its connection can reconnect, on any instance sharing the
 * backend, and receive what it missed.
 *
 * - A stream belongs to the principal that opened it (e.g.
 *   `sub:<subject>|client:<clientId>`; only its `Crypto` hash is stored) and
 *   replays only to that principal.
 * - Stream ids are random (128 bits, base64url); event ids are
 *   `<streamId>.<sequence>`, the sequence counting from 1 in append order,
 *   so an event id is globally unique and cannot be guessed.
 * - Bounded: a stream keeps its last `maxEventsPerStream` events (default
 *   100), dropping the oldest; the memory backend keeps at most `maxStreams`
 *   streams (default 1,000), evicting the least recently active.
 * - Expiring: a stream and its events expire `streamTtl` (default 5 minutes)
 *   after its last append or replay, by Effect's `Clock`, and are swept.
 * - Sealed: messages are stored as `Crypto` envelopes bound to their stream,
 *   never in the clear.
 * - Atomic: concurrent appends to one stream, from any instance, get
 *   distinct sequence numbers in the order they are stored.
 */
export class McpEventStore extends Context.Tag("mcp-oauth-store/McpEventStore")<McpEventStore, McpEventStore.Service>() {}

export declare namespace McpEventStore {
  export interface Service {
    /** Start a stream owned by `owner`; its fresh random id. */
    readonly openStream: (owner: string, options?: OpenStreamOptions) => Effect.Effect<string, StoreError>
    /**
     * Store the next message of a stream and slide its expiry; the event id
     * to send with it. `None` when the stream is unknown, closed, expired or
     * evicted (the message was not stored: send it without an id).
     */
    readonly append: (streamId: string, message: string) => Effect.Effect<Option.Option<string>, StoreError>
    /**
     * The events of `lastEventId`'s stream after that event, when `owner`
     * opened the stream; a replay slides the stream's expiry. `None` when the
     * id is malformed or was never issued, or the stream is unknown, expired,
     * evicted, or belongs to someone else (indistinguishable on purpose).
     */
    readonly replay: (lastEventId: string, owner: string) => Effect.Effect<Option.Option<McpStreamReplay>, StoreError>
    /** Forget a stream and its events now; `true` when it existed. */
    readonly closeStream: (streamId: string) => Effect.Effect<boolean, StoreError>
  }
}
