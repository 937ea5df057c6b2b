/** PKCE (RFC 7636) with S256 only, as OAuth 2.1 requires. */
import { Effect } from "effect"
import { encodeBase64Url, isSha256Base64Url } from "../internal/base64url.ts"

/** An S256 challenge: the base64url SHA-256 of a verifier, 43 characters. */
export const isCodeChallenge = isSha256Base64Url

/** A code verifier: 43 to 128 unreserved characters (RFC 7636 §4.1). */
export const isCodeVerifier = (verifier: string): boolean => /^[A-Za-z0-9._~-]{43,128}$/.test(verifier)

const utf8 = new TextEncoder()

/** The S256 challenge of a verifier: base64url(SHA-256(verifier)), through WebCrypto (Node and Workers). */
export const s256 = (verifier: string): Effect.Effect<string> =>
  Effect.promise(() => globalThis.crypto.subtle.digest("SHA-256", utf8.encode(verifier))).pipe(
    Effect.map((digest) => encodeBase64Url(new Uint8Array(digest)))
  )

/** Whether `verifier` is well formed and hashes to `challenge`, compared with `timingSafeEqual`. */
export const verifyPkce = (
  verifier: string,
  challenge: string,
  timingSafeEqual: (a: string, b: string) => boolean
): Effect.Effect<boolean> =>
  isCodeVerifier(verifier)
    ? Effect.map(s256(verifier), (computed) => timingSafeEqual(computed, challenge))
    : Effect.succeed(false)
