/**
 * `Crypto` on the global WebCrypto API (`crypto.subtle`,
 * `crypto.getRandomValues`), for Cloudflare Workers and other non-Node
 * runtimes. Nothing in this module's import graph touches `node:`. Keys are
 * imported once, non-extractable, when the layer is built. Envelopes are
 * interchangeable with the `node:crypto` layer.
 */
import { Effect, Either, Redacted } from "effect"
import { encodeBase64Url } from "../../internal/base64url.ts"
import { Crypto } from "../../services/Crypto.ts"
import { additionalData, decodeUtf8, decryptFailed, formatEnvelope, IV_BYTES, parseEnvelope, TAG_BYTES } from "./envelope.ts"
import type { Keyring } from "./keyring.ts"
import { openingKeys } from "./keyring.ts"
import { cryptoConstructors } from "./layers.ts"

/** `crypto.getRandomValues` fills at most this many bytes per call. */
const RANDOM_CHUNK = 65_536

const randomBytes = (length: number): Uint8Array<ArrayBuffer> => {
  const bytes = new Uint8Array(length)
  for (let offset = 0; offset < length; offset += RANDOM_CHUNK) {
    globalThis.crypto.getRandomValues(bytes.subarray(offset, Math.min(offset + RANDOM_CHUNK, length)))
  }
  return bytes
}

const encoder = new TextEncoder()

/**
 * Compare two strings in time that depends only on the longer length: every
 * UTF-16 code unit up to it is compared, a length mismatch still returns false.
 */
const timingSafeEqual = (a: string, b: string): boolean => {
  const length = Math.max(a.length, b.length)
  let difference = a.length ^ b.length
  for (let i = 0; i < length; i++) {
    // charCodeAt past the end is NaN, and NaN | 0 is 0.
    difference |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0)
  }
  return difference === 0
}

/** Build the WebCrypto service over a keyring, importing its keys once. */
const fromKeyring = (keyring: Keyring): Effect.Effect<Crypto.Service> =>
  Effect.gen(function*() {
    const subtle = globalThis.crypto.subtle
    const activeKid = keyring.active.kid
    const keys = new Map<string, CryptoKey>()
    for (const entry of openingKeys(keyring)) {
      const usages: Array<KeyUsage> = entry.kid === activeKid ? ["encrypt", "decrypt"] : ["decrypt"]
      const key = yield* Effect.promise(() =>
        subtle.importKey("raw", Redacted.value(entry.key), { name: "AES-GCM" }, false, usages)
      )
      keys.set(entry.kid, key)
    }
    const activeKey = keys.get(activeKid)
    if (activeKey === undefined) return yield* Effect.dieMessage("WebCrypto: the active key was not imported")
    const hashKey = yield* Effect.promise(() =>
      subtle.importKey("raw", Redacted.value(keyring.hashKey), { name: "HMAC", hash: "SHA-256" }, false, ["sign"])
    )

    const encrypt = (plaintext: string, recordKey: string) =>
      Effect.suspend(() => {
        const iv = randomBytes(IV_BYTES)
        const params: AesGcmParams = {
          name: "AES-GCM",
          iv,
          additionalData: additionalData(activeKid, recordKey),
          tagLength: TAG_BYTES * 8
        }
        return Effect.promise(() => subtle.encrypt(params, activeKey, encoder.encode(plaintext))).pipe(
          Effect.map((sealed) => formatEnvelope(activeKid, iv, new Uint8Array(sealed)))
        )
      })

    const decrypt = (envelope: string, recordKey: string) =>
      Effect.suspend(() => {
        const parsed = parseEnvelope(envelope)
        if (Either.isLeft(parsed)) return Effect.fail(decryptFailed(parsed.left))
        const { iv, kid, sealed } = parsed.right
        const key = keys.get(kid)
        if (key === undefined) return Effect.fail(decryptFailed("no key in the keyring has the envelope's key id"))
        const params: AesGcmParams = {
          name: "AES-GCM",
          iv,
          additionalData: additionalData(kid, recordKey),
          tagLength: TAG_BYTES * 8
        }
        return Effect.tryPromise({
          try: () => subtle.decrypt(params, key, sealed),
          catch: () => decryptFailed("authentication failed")
        }).pipe(
          Effect.flatMap((plaintext) => {
            const text = decodeUtf8(new Uint8Array(plaintext))
            return text === undefined ? Effect.fail(decryptFailed("plaintext is not UTF-8")) : Effect.succeed(text)
          })
        )
      })

    const hash = (secret: string) =>
      Effect.promise(() => subtle.sign("HMAC", hashKey, encoder.encode(secret))).pipe(
        Effect.map((mac) => encodeBase64Url(new Uint8Array(mac)))
      )

    const randomToken = (bytes = 32) =>
      Effect.sync(() => {
        if (!Number.isSafeInteger(bytes) || bytes < 0) {
          throw new RangeError("Crypto.randomToken: bytes must be a non-negative integer")
        }
        return encodeBase64Url(randomBytes(bytes))
      })

    return Crypto.of({ activeKeyId: activeKid, encrypt, decrypt, hash, randomToken, timingSafeEqual })
  })

const constructors = cryptoConstructors(fromKeyring)

/** The WebCrypto `Crypto` service over keys given as options (invalid keys: `ConfigError` naming the option). */
export const make = constructors.make
/** `make` as a layer. */
export const layer = constructors.layer
/** Keys from `Config`: by default `RS_TOKENS_ENC_KEY`, `RS_TOKENS_ENC_KEYRING` and `RS_TOKENS_HASH_KEY`. */
export const layerConfig = constructors.layerConfig
/** Over a fresh random key: for tests and development (nothing survives a restart). */
export const layerEphemeral = constructors.layerEphemeral
