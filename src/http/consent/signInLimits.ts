/**
 * How many wrong API keys the consent page lets through, counted in the
 * store's `RateLimiter` so that every instance sharing the store counts
 * together: per client address (across authorizations), per user (a wrong
 * key names no user, so it is a guess at every user's key: one budget all
 * users share) and per pending authorization (its last failure refuses it).
 *
 * Each attempt reserves a failure in every budget before the key is
 * checked, and gives them back when the key is right: concurrent guesses
 * cannot overrun a budget, and a lockout is answered without checking the
 * key, so it never tells whether a guess was right.
 */
import type { HttpServerRequest } from "@effect/platform"
import { Data, Effect, Option } from "effect"
import type { RateLimitDecision, RateLimiter } from "../../services/RateLimiter.ts"
import type { StoreError } from "../../services/StoreError.ts"
import { clientKey, consume, EVERY_USER, HttpLimits, refund, refused } from "../limits.ts"
import { SignIn } from "./signIn.ts"

/** What one sign-in attempt came to. */
export type SignInAttempt = Data.TaggedEnum<{
  /** The key is right: this user. */
  SignedIn: { readonly user: string }
  /** The key is wrong; `attemptsLeft` more may be tried for this authorization from this address. */
  WrongKey: { readonly attemptsLeft: number }
  /** This authorization has had all the wrong keys it may: refuse it. */
  Exhausted: {}
  /** A budget is spent (`address`: this client's; `user`: every user's): nothing was checked; try again later. */
  LockedOut: { readonly limit: "address" | "user"; readonly decision: RateLimitDecision; readonly clientAddress: string }
}>

/** The constructors of `SignInAttempt`. */
export const SignInAttempt = Data.taggedEnum<SignInAttempt>()

/**
 * Check an API key for a pending authorization within the failure budgets
 * (the key must not be empty: an empty form is no guess).
 */
export const attemptSignIn = (
  request: HttpServerRequest.HttpServerRequest,
  transactionId: string,
  apiKey: string
): Effect.Effect<SignInAttempt, StoreError, SignIn | HttpLimits | RateLimiter> =>
  Effect.gen(function*() {
    const limits = yield* HttpLimits
    const signIn = yield* SignIn
    const clientAddress = yield* clientKey(request)
    const byAddress = yield* consume(limits.signInPerAddress, clientAddress)
    if (refused(byAddress)) return SignInAttempt.LockedOut({ limit: "address", decision: byAddress, clientAddress })
    const byUser = yield* consume(limits.signInPerUser, EVERY_USER)
    const giveBack = (which: { readonly user: boolean }) =>
      Effect.zipRight(
        refund(limits.signInPerAddress, clientAddress, byAddress),
        which.user ? refund(limits.signInPerUser, EVERY_USER, byUser) : Effect.void
      )
    if (refused(byUser)) {
      yield* giveBack({ user: false })
      return SignInAttempt.LockedOut({ limit: "user", decision: byUser, clientAddress })
    }
    const byAuthorization = yield* consume(limits.signInPerAuthorization, transactionId)
    if (refused(byAuthorization)) {
      yield* giveBack({ user: true })
      return SignInAttempt.Exhausted()
    }
    const user = yield* signIn.userFor(apiKey)
    if (Option.isSome(user)) {
      yield* giveBack({ user: true })
      yield* refund(limits.signInPerAuthorization, transactionId, byAuthorization)
      return SignInAttempt.SignedIn({ user: user.value })
    }
    const left = Math.min(byAuthorization?.remaining ?? 0, byAddress?.remaining ?? Number.POSITIVE_INFINITY)
    return (byAuthorization?.remaining ?? 0) === 0 ? SignInAttempt.Exhausted() : SignInAttempt.WrongKey({ attemptsLeft: left })
  })
