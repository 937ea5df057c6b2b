/**
 * The in-process `RefreshLock`: leases in a `Map`, each taken and released in
 * one synchronous step. Enough for one instance, or for several layers in one
 * process; instances on separate machines need a shared backend's lock.
 */
import { Clock, Duration, Effect, Layer, Option } from "effect"
import { Crypto } from "../services/Crypto.ts"
import { type Lease, RefreshLock } from "../services/RefreshLock.ts"

/** Build the in-process lock; owner tokens come from `Crypto.randomToken`. */
export const make = Effect.gen(function*() {
  const crypto = yield* Crypto
  const leases = new Map<string, { readonly owner: string; readonly expiresAt: number }>()

  const service: RefreshLock.Service = {
    acquire: (key, ttl) =>
      Effect.gen(function*() {
        const owner = yield* crypto.randomToken(16)
        const now = yield* Clock.currentTimeMillis
        const held = leases.get(key)
        if (held !== undefined && now < held.expiresAt) return Option.none<Lease>()
        leases.set(key, { owner, expiresAt: now + Duration.toMillis(Duration.decode(ttl)) })
        return Option.some({ key, owner })
      }),
    release: (lease) =>
      Effect.sync(() => {
        if (leases.get(lease.key)?.owner !== lease.owner) return false
        leases.delete(lease.key)
        return true
      })
  }
  return service
})

/** The in-process `RefreshLock` as a layer. */
export const layer: Layer.Layer<RefreshLock, never, Crypto> = Layer.effect(RefreshLock, make)
