import { Effect, Option } from "effect"
import { ProviderTokens } from "../schema/providerTokens.ts"
import type { Crypto } from "../services/Crypto.ts"
import type { StoreError } from "../services/StoreError.ts"
import { Keys } from "./keys.ts"
import { open, seal } from "./sealed.ts"

/**
 * Provider tokens as every backend stores them: one `Crypto` envelope bound to
 * the (authorization, provider) key, beside the plaintext expiry the backend
 * needs to sweep it.
 */
export interface SealedProviderTokens {
  readonly envelope: string
  readonly expiresAt: number
}

/**
 * The instant a provider-token record stops being useful: its refresh token's
 * expiry when it has a refresh token, otherwise its access token's; `defaultTtl`
 * from `now` when the provider gave no expiry.
 */
export const providerTokensExpiry = (tokens: ProviderTokens, now: number, defaultTtl: number): number =>
  (tokens.refreshToken !== undefined ? tokens.refreshExpiresAt : tokens.accessExpiresAt) ?? now + defaultTtl

/** An upstream refresh that returns no refresh token keeps the one we had. */
export const mergeProviderTokens = (previous: Option.Option<ProviderTokens>, next: ProviderTokens): ProviderTokens =>
  next.refreshToken !== undefined || Option.isNone(previous) || previous.value.refreshToken === undefined
    ? next
    : {
      ...next,
      refreshToken: previous.value.refreshToken,
      ...(previous.value.refreshExpiresAt === undefined ? {} : { refreshExpiresAt: previous.value.refreshExpiresAt })
    }

export const sealProviderTokens = (
  crypto: Crypto.Service,
  authorizationId: string,
  providerId: string,
  tokens: ProviderTokens,
  now: number,
  defaultTtl: number
): Effect.Effect<SealedProviderTokens, StoreError> =>
  seal(crypto, ProviderTokens, tokens, Keys.providerTokens(authorizationId, providerId), "ProviderTokenStore.storeTokens")
    .pipe(Effect.map((envelope) => ({ envelope, expiresAt: providerTokensExpiry(tokens, now, defaultTtl) })))

export const openProviderTokens = (
  crypto: Crypto.Service,
  authorizationId: string,
  providerId: string,
  envelope: string
): Effect.Effect<ProviderTokens, StoreError> =>
  open(crypto, ProviderTokens, envelope, Keys.providerTokens(authorizationId, providerId), "ProviderTokenStore.getTokens")

/** Re-seal tokens under another authorization id: the AAD names the record, so a move re-encrypts. */
export const resealProviderTokens = (
  crypto: Crypto.Service,
  from: string,
  to: string,
  providerId: string,
  sealed: SealedProviderTokens
): Effect.Effect<SealedProviderTokens, StoreError> =>
  crypto.decrypt(sealed.envelope, Keys.providerTokens(from, providerId)).pipe(
    Effect.flatMap((json) => crypto.encrypt(json, Keys.providerTokens(to, providerId))),
    Effect.map((envelope) => ({ envelope, expiresAt: sealed.expiresAt }))
  )
