/**
 * Local-mode sign-in on the consent page: the user proves who they are with
 * an API key from `API_KEYS` (seed 000: sessions are per API key). Keys are
 * compared as `Crypto` lookup hashes in constant time, never logged; failed
 * attempts are counted per pending authorization, in this process.
 */
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { LruMap } from "../../internal/lruMap.ts"
import { Crypto } from "../../services/Crypto.ts"
import { Settings } from "../../server/config.ts"

/** Wrong API keys one pending authorization may see; the last one refuses it (`access_denied`). */
export const MAX_SIGN_IN_FAILURES = 5

/** How many pending authorizations the failure counter remembers (oldest forgotten first). */
const TRACKED_TRANSACTIONS = 10_000

export interface SignInService {
  /** Whether any API key is configured: without one, nobody can sign in. */
  readonly configured: boolean
  /** The user an API key belongs to; `None` for an unknown (or empty) key. */
  readonly userFor: (apiKey: string) => Effect.Effect<Option.Option<string>>
  /** Count one failed sign-in for a pending authorization; returns the count so far. */
  readonly recordFailure: (transactionId: string) => Effect.Effect<number>
  /** Forget the failures of a pending authorization that has been decided. */
  readonly forget: (transactionId: string) => Effect.Effect<void>
}

/** The consent page's sign-in: API-key users and the failed-attempt counter. */
export class SignIn extends Context.Tag("mcp-oauth-store/ConsentSignIn")<SignIn, SignInService>() {}

/** Build the sign-in from the settings' `apiKeys`, hashing each key once. */
export const makeSignIn: Effect.Effect<SignInService, never, Settings | Crypto> = Effect.gen(function*() {
  const settings = yield* Settings
  const crypto = yield* Crypto
  const users = yield* Effect.forEach(settings.apiKeys, ({ apiKey, user }) =>
    Effect.map(crypto.hash(Redacted.value(apiKey)), (hash) => ({ user, hash })))
  const failures = new LruMap<string, number>()

  const userFor = (apiKey: string): Effect.Effect<Option.Option<string>> =>
    apiKey === "" || users.length === 0
      ? Effect.succeed(Option.none())
      : Effect.map(crypto.hash(apiKey), (hash) => {
        // Every configured hash is compared, so the time taken does not tell which one matched.
        let matched: string | undefined
        for (const entry of users) {
          if (crypto.timingSafeEqual(hash, entry.hash) && matched === undefined) matched = entry.user
        }
        return Option.fromNullable(matched)
      })

  const recordFailure = (transactionId: string): Effect.Effect<number> =>
    Effect.sync(() => {
      const count = (failures.get(transactionId) ?? 0) + 1
      failures.set(transactionId, count)
      if (failures.size > TRACKED_TRANSACTIONS) failures.evictOldest()
      return count
    })

  const forget = (transactionId: string): Effect.Effect<void> => Effect.sync(() => void failures.delete(transactionId))

  return { configured: users.length > 0, userFor, recordFailure, forget }
})

/** `SignIn` for the server: needs the `Settings` and `Crypto`. */
export const SignInLive: Layer.Layer<SignIn, never, Settings | Crypto> = Layer.effect(SignIn, makeSignIn)
