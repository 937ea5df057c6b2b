/**
 * The at-rest envelope shared by the `node:crypto` and WebCrypto layers, so
 * either one opens what the other sealed:
 *
 * ```
 * v1.<kid>.<iv>.<ciphertext || tag>
 * ```
 *
 * `kid` is the 8-character key id of the sealing key, `iv` 12 random bytes and
 * the last part the AES-256-GCM ciphertext followed by its 16-byte tag, both
 * unpadded base64url. The additional authenticated data is the UTF-8 of
 * `v1.<kid>.<recordKey>`: a ciphertext moved under another record key, or an
 * envelope whose header was edited, fails authentication.
 *
 * No `node:` import: this module is part of the Workers bundle.
 */
import { Either } from "effect"
import { base64Url, type Base64UrlCodec } from "../../internal/base64url.ts"
import { StoreError } from "../../services/StoreError.ts"

/** The envelope format version, the first part of every envelope. */
export const ENVELOPE_VERSION = "v1"

/** AES-GCM IV length in bytes (96 bits, the size GCM is designed for). */
export const IV_BYTES = 12

/** AES-GCM authentication tag length in bytes. */
export const TAG_BYTES = 16

/** Key id length in base64url characters. */
export const KID_LENGTH = 8

const KID_PATTERN = /^[A-Za-z0-9_-]{8}$/

/** `true` when `kid` has the shape of a key id (8 base64url characters). */
export const isKeyId = (kid: string): boolean => KID_PATTERN.test(kid)

/** A parsed envelope: the sealing key's id, the IV and the ciphertext with its tag appended. */
export interface Envelope<B extends Uint8Array = Uint8Array<ArrayBuffer>> {
  readonly kid: string
  readonly iv: B
  readonly sealed: B
}

const encoder = new TextEncoder()

/** The text of the additional authenticated data (see `additionalData`): its UTF-8 bytes are the AAD. */
export const additionalDataText = (kid: string, recordKey: string): string => `${ENVELOPE_VERSION}.${kid}.${recordKey}`

/** The additional authenticated data binding an envelope to its key id and record key. */
export const additionalData = (kid: string, recordKey: string): Uint8Array<ArrayBuffer> =>
  encoder.encode(additionalDataText(kid, recordKey))

/**
 * The key id an envelope names, read from its header without touching a key or
 * decoding the rest: `undefined` when `envelope` does not start like one
 * (`v1.<8-character kid>.`). Says which key sealed it, so "already under the
 * active key" is checked without decrypting.
 */
export const keyIdOf = (envelope: string): string | undefined => {
  const start = ENVELOPE_VERSION.length + 1
  if (!envelope.startsWith(`${ENVELOPE_VERSION}.`) || envelope.charCodeAt(start + KID_LENGTH) !== 46) return undefined
  const kid = envelope.slice(start, start + KID_LENGTH)
  return isKeyId(kid) ? kid : undefined
}

/** Envelope serialization over one base64url codec. */
export interface EnvelopeCodec<B extends Uint8Array> {
  /** Serialize an envelope; `sealed` is the ciphertext followed by the 16-byte tag. */
  readonly format: (kid: string, iv: Uint8Array, sealed: Uint8Array) => string
  /**
   * Parse an envelope without touching any key. `Left` carries a short reason
   * that is safe to put in an error (it never quotes the input).
   */
  readonly parse: (input: string) => Either.Either<Envelope<B>, string>
}

/** Envelope serialization over `codec` (which must be strict: one canonical encoding per byte string). */
export const makeEnvelopeCodec = <B extends Uint8Array>(codec: Base64UrlCodec<B>): EnvelopeCodec<B> => ({
  format: (kid, iv, sealed) => `${ENVELOPE_VERSION}.${kid}.${codec.encode(iv)}.${codec.encode(sealed)}`,
  parse: (input) => {
    const parts = input.split(".")
    if (parts.length !== 4) return Either.left("malformed envelope: expected 4 parts")
    const [version = "", kid = "", ivPart = "", sealedPart = ""] = parts
    if (version !== ENVELOPE_VERSION) return Either.left("unsupported envelope version")
    if (!isKeyId(kid)) return Either.left("malformed envelope: bad key id")
    const iv = codec.decode(ivPart)
    if (iv === undefined || iv.length !== IV_BYTES) return Either.left("malformed envelope: bad iv")
    const sealed = codec.decode(sealedPart)
    if (sealed === undefined || sealed.length < TAG_BYTES) return Either.left("malformed envelope: bad ciphertext")
    return Either.right({ kid, iv, sealed })
  }
})

const portable = makeEnvelopeCodec(base64Url)

/** Serialize an envelope with the portable codec; `sealed` is the ciphertext followed by the 16-byte tag. */
export const formatEnvelope: (kid: string, iv: Uint8Array, sealed: Uint8Array) => string = portable.format

/** Parse an envelope with the portable codec; `Left` is a short, secret-free reason. */
export const parseEnvelope: (input: string) => Either.Either<Envelope, string> = portable.parse

/** The error every failed `Crypto.decrypt` reports; `description` must be secret-free. */
export const decryptFailed = (description: string, cause?: unknown): StoreError =>
  new StoreError({
    reason: "DecryptFailed",
    method: "Crypto.decrypt",
    description,
    ...(cause === undefined ? {} : { cause })
  })

const decoder = new TextDecoder("utf-8", { fatal: true })

/** Decode authenticated plaintext bytes as UTF-8; `undefined` if they are not valid UTF-8. */
export const decodeUtf8 = (bytes: Uint8Array): string | undefined => {
  try {
    return decoder.decode(bytes)
  } catch {
    return undefined
  }
}
