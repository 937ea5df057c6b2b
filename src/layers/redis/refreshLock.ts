import { Clock, Duration, Effect, Option } from "effect"
import { Crypto } from "../../services/Crypto.ts"
import type { Lease, RefreshLock } from "../../services/RefreshLock.ts"
import { StoreError } from "../../services/StoreError.ts"
import { type RedisClient, traced } from "./client.ts"
import { int } from "./codec.ts"
import * as Lua from "./lua.ts"

/** A lease TTL as whole milliseconds; `Invalid` unless positive and finite (`PX` needs both). */
const leaseMillis = (ttl: Duration.DurationInput, method: string): Effect.Effect<number, StoreError> =>
  Effect.suspend(() => {
    const decoded = Duration.decodeUnknown(ttl)
    const millis = Option.isSome(decoded) ? Math.ceil(Duration.toMillis(decoded.value)) : Number.NaN
    return Number.isFinite(millis) && millis > 0
      ? Effect.succeed(millis)
      : Effect.fail(new StoreError({ reason: "Invalid", method, description: "lease TTL must be a positive, finite duration" }))
  })

/**
 * The Redis `RefreshLock`, shared by every instance on the same Redis and
 * prefix: a lease is a hash under `<prefix><key>` holding a random owner
 * token (`Crypto.randomToken`) and its expiry by Effect's `Clock`, written
 * with `PX` so a crashed holder's lease also disappears in real time. Taking
 * and releasing (compare-and-delete on the owner token) are one script each.
 */
export const makeRefreshLock = (client: RedisClient) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto

    const service: RefreshLock.Service = {
      acquire: (key, ttl) =>
        Effect.gen(function*() {
          const method = "RefreshLock.acquire"
          const millis = yield* leaseMillis(ttl, method)
          const owner = yield* crypto.randomToken(16)
          const now = yield* Clock.currentTimeMillis
          const taken = yield* client.run(method, Lua.acquireLease, [key, now, now + millis, owner])
          return int(taken) === 1 ? Option.some<Lease>({ key, owner }) : Option.none<Lease>()
        }).pipe(traced("RefreshLock.acquire")),

      release: (lease) =>
        client.run("RefreshLock.release", Lua.releaseLease, [lease.key, lease.owner]).pipe(
          Effect.map((released) => int(released) === 1),
          traced("RefreshLock.release")
        )
    }

    return service
  })
