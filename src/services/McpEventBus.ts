import { Context, type Effect, type Queue, type Scope } from "effect"
import type { McpEvent } from "../schema/mcpEvent.ts"
import type { StoreError } from "./StoreError.ts"

/**
 * Server-side change events (`McpEvent`) that every instance sharing the
 * backend hears: what feeds `subscriptions/listen` streams, whichever
 * instance holds them.
 *
 * Delivery is at most once: each subscription receives every event published
 * (on any instance) after it subscribed, unless it falls so far behind that
 * its buffer slides (its oldest undelivered events are dropped, never the
 * publisher or another subscriber held up), or the backend's pub/sub is
 * unreachable while the event is published (Redis: events published during
 * an outage are not delivered across instances). No event is stored.
 *
 * Backends: memory, file and SQLite provide an in-process bus (SQLite
 * processes sharing one file do not share it); Redis provides one over
 * `PUBLISH`/`SUBSCRIBE`.
 */
export class McpEventBus extends Context.Tag("mcp-oauth-store/McpEventBus")<McpEventBus, McpEventBus.Service>() {}

export declare namespace McpEventBus {
  export interface Service {
    /**
     * Send an event to every subscription on every instance. Fails with
     * `StoreError` `Unavailable` when the shared backend cannot take it (it
     * then reached no one).
     */
    readonly publish: (event: McpEvent) => Effect.Effect<void, StoreError>
    /**
     * Subscribe for as long as the current scope lives (e.g. one HTTP
     * response stream): the queue receives every event published after this
     * returns. Closing the scope ends the subscription. Fails with
     * `StoreError` `Unavailable` when the backend's subscription cannot be
     * set up (Redis unreachable at the first subscription of an instance).
     */
    readonly subscribe: Effect.Effect<Queue.Dequeue<McpEvent>, StoreError, Scope.Scope>
    /** The subscriptions open on this instance right now (for health and metrics). */
    readonly subscriptions: Effect.Effect<number>
  }
}
