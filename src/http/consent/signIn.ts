/**
 * Local-mode sign-in on the consent page: the user proves who they are with
 * an API key from `API_KEYS` (seed 000: sessions are per API key). Keys are
 * compared as `Crypto` lookup hashes in constant time, never logged. How
 * many wrong keys may be tried is `signInLimits.ts`'s concern.
 */
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { Crypto } from "../../services/Crypto.ts"

/** A user of the consent page and the API key that proves it is them. */
export interface ApiKeyUser {
  readonly user: string
  readonly apiKey: Redacted.Redacted<string>
}

/** How users sign in on the consent page. */
export interface SignInOptions {
  /** Who may sign in, each with an API key (seed 000: sessions are per API key). */
  readonly apiKeys?: ReadonlyArray<ApiKeyUser>
  /**
   * Development only: approve every authorization at once as this user,
   * without a page. The application refuses it on a non-loopback address.
   */
  readonly autoApprove?: string
}

/** What the consent page's handlers ask of sign-in. */
export interface SignInService {
  /** Whether any API key is configured: without one, nobody can sign in. */
  readonly configured: boolean
  /** The development switch: the user every authorization is approved as, without a page. */
  readonly autoApprove: Option.Option<string>
  /** The user an API key belongs to; `None` for an unknown (or empty) key. */
  readonly userFor: (apiKey: string) => Effect.Effect<Option.Option<string>>
}

/** The consent page's sign-in: API-key users. */
export class SignIn extends Context.Tag("mcp-oauth-store/ConsentSignIn")<SignIn, SignInService>() {}

/** Build the sign-in over its options, hashing each API key once. */
export const makeSignIn = (options: SignInOptions): Effect.Effect<SignInService, never, Crypto> => Effect.gen(function*() {
  const crypto = yield* Crypto
  const users = yield* Effect.forEach(options.apiKeys ?? [], ({ apiKey, user }) =>
    Effect.map(crypto.hash(Redacted.value(apiKey)), (hash) => ({ user, hash })))

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

  return { configured: users.length > 0, autoApprove: Option.fromNullable(options.autoApprove), userFor }
})

/** `SignIn` over its options; needs `Crypto` for the keys' lookup hashes. */
export const signInLayer = (options: SignInOptions): Layer.Layer<SignIn, never, Crypto> => Layer.effect(SignIn, makeSignIn(options))
