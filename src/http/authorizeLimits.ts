/**
 * The budgets of `GET /authorize`, in local and upstream mode alike: a rate
 * per client address, checked before any work (client lookups may fetch a
 * metadata document); then one pending authorization reserved in the budget
 * all anonymous requests share, given back when the request stores nothing
 * (refused, or decided at once by the development auto-approval).
 *
 * Why a shared budget rather than eviction: a bounded store (the memory
 * store keeps 1,000 pending authorizations, least recent evicted) lets a
 * flood of requests push out a consent page a user has open, whose approval
 * then fails. A budget of `n` per transaction lifetime admits at most
 * `2n - 1` within any lifetime (see `RateLimiter`), so a flood is refused at
 * the door, with a page saying when to come back, and no pending
 * authorization already stored is ever evicted. The per-address rate keeps
 * one address from taking the whole budget.
 */
import type { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Either } from "effect"
import type { RateLimiter } from "../services/RateLimiter.ts"
import type { StoreError } from "../services/StoreError.ts"
import { clientKey, consume, EVERY_ADDRESS, HttpLimits, logRefusal, refund, refused, waitPage } from "./limits.ts"

/** A pending authorization reserved in the shared budget. */
export interface PendingReservation {
  /** Give the reservation back: the request stored nothing, or its pending authorization is already gone. */
  readonly release: Effect.Effect<void, StoreError, RateLimiter>
}

/**
 * Admit an authorization request: `Left` with the page to answer when a
 * limit refuses it (429 for the address's rate, 503 for the server's
 * budget), else `Right` with the reservation of its pending authorization.
 */
export const admitAuthorizationRequest = (
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<Either.Either<PendingReservation, HttpServerResponse.HttpServerResponse>, StoreError, HttpLimits | RateLimiter> =>
  Effect.gen(function*() {
    const limits = yield* HttpLimits
    const key = yield* clientKey(request)
    const paced = yield* consume(limits.authorize, key)
    if (refused(paced)) {
      yield* logRefusal("authorize", key, paced)
      return Either.left(waitPage(paced, "Too many requests", "This network has started too many authorizations in a short time."))
    }
    const reserved = yield* consume(limits.pendingAuthorizations, EVERY_ADDRESS)
    if (refused(reserved)) {
      yield* logRefusal("authorize-pending", key, reserved)
      return Either.left(
        waitPage(reserved, "Too many authorizations in progress", "This server has too many authorization requests waiting for a decision.", 503)
      )
    }
    return Either.right({ release: refund(limits.pendingAuthorizations, EVERY_ADDRESS, reserved) })
  })
