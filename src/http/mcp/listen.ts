/**
 * `subscriptions/listen` (protocol revision 2026-07-28): a long-lived SSE
 * stream of change notifications. The first frame acknowledges the filter
 * this server honours (the tool list: `tools.listChanged`); then every
 * `ToolsListChanged` published on the `McpEventBus` (by this instance or any
 * other sharing the backend) arrives as `notifications/tools/list_changed`.
 * Every frame carries the listen request's id as its subscription id, and an
 * SSE `id` from the `McpEventStore`, so a client that lost the connection
 * reconnects with `GET /mcp` + `Last-Event-ID`, on any instance, and gets
 * what it missed before the stream goes on. Comment frames keep idle
 * connections open.
 */
import { HttpServerResponse } from "@effect/platform"
import { Effect, Exit, Option, Predicate, Queue, Schedule, Scope, Stream } from "effect"
import type { VerifiedAccessToken } from "../../oauth/accessTokens.ts"
import type { McpEvent } from "../../schema/mcpEvent.ts"
import { McpEventBus } from "../../services/McpEventBus.ts"
import { McpEventStore } from "../../services/McpEventStore.ts"
import type { StoreError } from "../../services/StoreError.ts"
import { McpEndpointConfig } from "./config.ts"
import { withoutEnvelope } from "./envelope.ts"
import { failure, RpcErrorCode, type RpcId, type RpcReply, type RpcRequest } from "./jsonrpc.ts"

const SUBSCRIPTION_META = "io.modelcontextprotocol/subscriptionId"

/** How long a listen stream stays resumable after its last event (its events are kept this long). */
const STREAM_TTL = "30 minutes"

/** How soon a client reconnects after losing a listen stream (the SSE `retry:` field), in milliseconds. */
const RETRY_MILLIS = 1_000

/** The stream's owner in the event store: only this caller may resume it. */
const ownerOf = (token: VerifiedAccessToken): string => `sub:${token.subject}|client:${token.clientId}`

const encoder = new TextEncoder()

/** One SSE frame: a JSON-RPC message, with its event id when it has one. */
const frame = (message: string, id: Option.Option<string>): Uint8Array =>
  encoder.encode(`${Option.match(id, { onNone: () => "", onSome: (value) => `id: ${value}\n` })}event: message\ndata: ${message}\n\n`)

const KEEP_ALIVE = encoder.encode(": keepalive\n\n")

/** The headers of an SSE response (no caching, no proxy buffering). */
const SSE_HEADERS = { "cache-control": "no-cache, no-transform", "x-accel-buffering": "no" } as const

/** The notification a bus event becomes on a stream whose filter asked for it; `undefined` otherwise. */
const notificationOf = (event: McpEvent): string | undefined =>
  event._tag === "ToolsListChanged" ? "notifications/tools/list_changed" : undefined

const notification = (method: string, subscriptionId: RpcId, params: Record<string, unknown> = {}): string =>
  JSON.stringify({ jsonrpc: "2.0", method, params: { ...params, _meta: { [SUBSCRIPTION_META]: subscriptionId } } })

/**
 * The live part of a stream: bus events as notifications, each appended to
 * the event store first, and keep-alive comments while idle. `subscription`
 * must already be open (so nothing published after the acknowledgement is
 * missed); its scope closes when the stream ends.
 */
const live = (
  streamId: string,
  subscriptionId: RpcId,
  subscription: Queue.Dequeue<McpEvent>,
  scope: Scope.CloseableScope
): Effect.Effect<Stream.Stream<Uint8Array>, never, McpEventStore | McpEndpointConfig> =>
  Effect.gen(function*() {
    const store = yield* McpEventStore
    const config = yield* McpEndpointConfig
    const stored = (message: string): Effect.Effect<Uint8Array> =>
      store.append(streamId, message).pipe(
        Effect.catchAll((error: StoreError) =>
          Effect.as(Effect.logWarning("listen: event not stored; sent without an id").pipe(Effect.annotateLogs("reason", error.reason)), Option.none())
        ),
        Effect.map((id) => frame(message, id))
      )
    const events = Stream.fromQueue(subscription).pipe(
      Stream.filterMap((event) => Option.fromNullable(notificationOf(event))),
      Stream.mapEffect((method) => stored(notification(method, subscriptionId)))
    )
    const keepAlive = config.keepAlive > 0
      ? Stream.fromSchedule(Schedule.spaced(config.keepAlive)).pipe(Stream.as(KEEP_ALIVE))
      : Stream.empty
    return Stream.merge(events, keepAlive).pipe(Stream.ensuring(Scope.close(scope, Exit.void)))
  })

/** An SSE response over `body`, starting with the reconnection delay. */
const sseResponse = (body: Stream.Stream<Uint8Array>): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.stream(Stream.concat(Stream.succeed(encoder.encode(`retry: ${RETRY_MILLIS}\n\n`)), body), {
    contentType: "text/event-stream",
    headers: SSE_HEADERS
  })

/** What `subscriptions/listen` answers with: a JSON error reply, or the stream. */
export type ListenAnswer =
  | { readonly _tag: "Reply"; readonly reply: RpcReply }
  | { readonly _tag: "Stream"; readonly response: HttpServerResponse.HttpServerResponse }

/** The filter of a listen request; `undefined` when it is missing or not a `SubscriptionFilter`. */
const filterOf = (params: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> | undefined => {
  const filter = params["notifications"]
  if (!Predicate.isRecord(filter) || Array.isArray(filter)) return undefined
  for (const key of ["toolsListChanged", "promptsListChanged", "resourcesListChanged"]) {
    if (filter[key] !== undefined && typeof filter[key] !== "boolean") return undefined
  }
  const uris = filter["resourceSubscriptions"]
  if (uris !== undefined && (!Array.isArray(uris) || !uris.every((uri) => typeof uri === "string"))) return undefined
  return filter
}

/**
 * `subscriptions/listen`: acknowledge the honoured part of the filter, then
 * stream tool-list changes. A filter this server honours nothing of is
 * acknowledged empty and the stream ends at once with the listen result.
 */
export const listen = (
  request: RpcRequest,
  token: VerifiedAccessToken
): Effect.Effect<ListenAnswer, StoreError, McpEventBus | McpEventStore | McpEndpointConfig> =>
  Effect.gen(function*() {
    const filter = filterOf(withoutEnvelope(request.params))
    if (filter === undefined) {
      return {
        _tag: "Reply",
        reply: failure(request.id, RpcErrorCode.InvalidParams, "Invalid params: 'notifications' is required and must be a valid SubscriptionFilter")
      }
    }
    const config = yield* McpEndpointConfig
    const honoured = filter["toolsListChanged"] === true ? { toolsListChanged: true } : {}
    const ack = notification("notifications/subscriptions/acknowledged", request.id, { notifications: honoured })
    if (!("toolsListChanged" in honoured)) {
      const done = JSON.stringify({
        jsonrpc: "2.0",
        id: request.id,
        result: { resultType: "complete", _meta: { [SUBSCRIPTION_META]: request.id, "io.modelcontextprotocol/serverInfo": config.serverInfo } }
      })
      return { _tag: "Stream", response: sseResponse(Stream.make(frame(ack, Option.none()), frame(done, Option.none()))) }
    }
    // Subscribe before acknowledging: nothing published after the client sees the ack is missed.
    const scope = yield* Scope.make()
    const subscription = yield* Effect.onError((yield* McpEventBus).subscribe.pipe(Scope.extend(scope)), () => Scope.close(scope, Exit.void))
    const store = yield* McpEventStore
    const streamId = yield* store.openStream(ownerOf(token), { ttl: STREAM_TTL }).pipe(Effect.onError(() => Scope.close(scope, Exit.void)))
    const ackId = yield* store.append(streamId, ack).pipe(Effect.onError(() => Scope.close(scope, Exit.void)))
    const rest = yield* live(streamId, request.id, subscription, scope)
    yield* Effect.logInfo("listen stream opened").pipe(Effect.annotateLogs({ subject: token.subject, client_id: token.clientId }))
    return { _tag: "Stream", response: sseResponse(Stream.concat(Stream.succeed(frame(ack, ackId)), rest)) }
  })

/** The subscription id a stored listen frame carries. */
const subscriptionIdIn = (message: string): RpcId | undefined => {
  try {
    const parsed: unknown = JSON.parse(message)
    const params = Predicate.isRecord(parsed) ? parsed["params"] : undefined
    const meta = Predicate.isRecord(params) ? params["_meta"] : undefined
    const id = Predicate.isRecord(meta) ? meta[SUBSCRIPTION_META] : undefined
    return typeof id === "string" || typeof id === "number" ? id : undefined
  } catch {
    return undefined
  }
}

/**
 * `GET /mcp` with `Last-Event-ID` (2026-07-28): resume a listen stream the
 * caller opened, on whichever instance: the events it missed (with their
 * ids), then the live stream. `None` when the stream is unknown, expired or
 * another caller's.
 */
export const resume = (
  lastEventId: string,
  token: VerifiedAccessToken
): Effect.Effect<Option.Option<HttpServerResponse.HttpServerResponse>, StoreError, McpEventBus | McpEventStore | McpEndpointConfig> =>
  Effect.gen(function*() {
    const store = yield* McpEventStore
    const owner = ownerOf(token)
    const missed = yield* store.replay(lastEventId, owner)
    if (Option.isNone(missed)) return Option.none()
    const { events, streamId, truncated } = missed.value
    // Every frame of the stream names its subscription: from the missed events, or from what the stream still holds.
    const held = events.length > 0 ? events : Option.match(yield* store.replay(`${streamId}.0`, owner), { onNone: () => [], onSome: (all) => all.events })
    const subscriptionId = held.map((event) => subscriptionIdIn(event.message)).find((id) => id !== undefined)
    if (subscriptionId === undefined) return Option.none()
    const scope = yield* Scope.make()
    const subscription = yield* Effect.onError((yield* McpEventBus).subscribe.pipe(Scope.extend(scope)), () => Scope.close(scope, Exit.void))
    // Events dropped from the window were list changes: one more tells the client to refetch.
    const gap = truncated ? [notification("notifications/tools/list_changed", subscriptionId)] : []
    const replayed = [
      ...gap.map((message) => frame(message, Option.none())),
      ...events.map((event) => frame(event.message, Option.some(event.id)))
    ]
    const rest = yield* live(streamId, subscriptionId, subscription, scope)
    yield* Effect.logInfo("listen stream resumed").pipe(Effect.annotateLogs({ subject: token.subject, replayed: events.length, truncated }))
    return Option.some(sseResponse(Stream.concat(Stream.fromIterable(replayed), rest)))
  })
