import { Context, type Effect } from "effect"
import type { StoreError } from "./StoreError.ts"

/**
 * Encryption at rest and secret hashing.
 *
 * Envelopes are AES-256-GCM with a random 96-bit IV and the id of the key that
 * sealed them; the additional authenticated data binds each ciphertext to the
 * record key it was written under, so a ciphertext copied to another record
 * does not open. Lookup hashes are HMAC-SHA256 under a key of their own, so a
 * stored hash reveals nothing about the secret and cannot be recomputed
 * without the key.
 */
export class Crypto extends Context.Tag("mcp-oauth-store/Crypto")<Crypto, Crypto.Service>() {}

export declare namespace Crypto {
  export interface Service {
    /** The id of the active key: the key id every envelope sealed by `encrypt` carries (see `keyIdOf`). */
    readonly activeKeyId: string
    /** Seal `plaintext` with the active key, bound to `recordKey`. */
    readonly encrypt: (plaintext: string, recordKey: string) => Effect.Effect<string, StoreError>
    /** Open an envelope sealed under `recordKey` with any key of the keyring; `DecryptFailed` otherwise. */
    readonly decrypt: (envelope: string, recordKey: string) => Effect.Effect<string, StoreError>
    /** The HMAC-SHA256 lookup hash of a secret (base64url). */
    readonly hash: (secret: string) => Effect.Effect<string>
    /** A fresh random token of `bytes` random bytes (default 32), base64url. */
    readonly randomToken: (bytes?: number) => Effect.Effect<string>
    /** Compare two strings in time independent of where they differ. */
    readonly timingSafeEqual: (a: string, b: string) => boolean
  }
}
