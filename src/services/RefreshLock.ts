import { Context, type Duration, type Effect, type Option } from "effect"
import type { StoreError } from "./StoreError.ts"

/** A held lease: the key and the random owner token that only its holder knows. */
export interface Lease {
  readonly key: string
  readonly owner: string
}

/**
 * Short leases that let one caller at a time refresh a provider token, across
 * every instance that shares the backend. A lease expires on its own (its
 * holder may crash); release is compare-and-delete on the owner token, so a
 * holder whose lease already expired cannot release the next holder's.
 *
 * The in-process implementation is `LocalRefreshLock` (`mcp-oauth-store/oauth`); a
 * shared backend (the Redis layer: a key holding the owner token, with `PX`,
 * taken and released by compare-and-delete in one Lua script each) provides
 * it for several instances.
 */
export class RefreshLock extends Context.Tag("mcp-oauth-store/RefreshLock")<RefreshLock, RefreshLock.Service>() {}

export declare namespace RefreshLock {
  export interface Service {
    /** Take the lease on `key` for `ttl` if nobody holds it; `None` when someone does. */
    readonly acquire: (key: string, ttl: Duration.DurationInput) => Effect.Effect<Option.Option<Lease>, StoreError>
    /** Give the lease back if it is still ours; `true` when it was. */
    readonly release: (lease: Lease) => Effect.Effect<boolean, StoreError>
  }
}
