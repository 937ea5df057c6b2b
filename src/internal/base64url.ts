/**
 * Unpadded base64url (RFC 4648 §5) for byte arrays, in plain JavaScript so it
 * runs unchanged on Node and on Cloudflare Workers (no `node:` import, no
 * `Buffer`).
 *
 * Decoding is strict: only `A-Z a-z 0-9 - _`, no `=` padding, no whitespace,
 * and the unused low bits of the last character must be zero. Every byte
 * string therefore has exactly one accepted encoding, so an edited character
 * can never decode to the same bytes.
 */

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

const ENCODE: Uint8Array = Uint8Array.from(ALPHABET, (char) => char.charCodeAt(0))

const DECODE: Int8Array = (() => {
  const table = new Int8Array(128).fill(-1)
  for (let i = 0; i < ALPHABET.length; i++) {
    table[ALPHABET.charCodeAt(i)] = i
  }
  return table
})()

/** `true` when every character of `input` is in the base64url alphabet (padding not allowed). */
export const isBase64UrlAlphabet = (input: string): boolean => /^[A-Za-z0-9_-]*$/.test(input)

/** A SHA-256 digest in unpadded base64url (43 characters): a PKCE S256 challenge, a JWK thumbprint (RFC 7638). */
export const isSha256Base64Url = (input: string): boolean => input.length === 43 && isBase64UrlAlphabet(input)

/** The number of bytes an unpadded base64url string of `length` characters encodes. */
export const decodedByteLength = (length: number): number => Math.floor((length * 3) / 4)

// The encoder writes ASCII codes, which decode identically as UTF-8 (the one
// encoding every runtime's TextDecoder supports).
const ascii = new TextDecoder()

/** Encode bytes as unpadded base64url. */
export const encodeBase64Url = (bytes: Uint8Array): string => {
  const length = bytes.length
  const out = new Uint8Array(Math.ceil((length * 4) / 3))
  const whole = length - (length % 3)
  let o = 0
  let i = 0
  for (; i < whole; i += 3) {
    const n = ((bytes[i] ?? 0) << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0)
    out[o++] = ENCODE[n >>> 18] ?? 0
    out[o++] = ENCODE[(n >>> 12) & 63] ?? 0
    out[o++] = ENCODE[(n >>> 6) & 63] ?? 0
    out[o++] = ENCODE[n & 63] ?? 0
  }
  const rest = length - whole
  if (rest > 0) {
    const n = ((bytes[i] ?? 0) << 16) | (rest === 2 ? (bytes[i + 1] ?? 0) << 8 : 0)
    out[o++] = ENCODE[n >>> 18] ?? 0
    out[o++] = ENCODE[(n >>> 12) & 63] ?? 0
    if (rest === 2) out[o++] = ENCODE[(n >>> 6) & 63] ?? 0
  }
  return ascii.decode(out.subarray(0, o))
}

const sextet = (input: string, index: number): number => {
  const code = input.charCodeAt(index)
  return code < 128 ? (DECODE[code] ?? -1) : -1
}

/**
 * Decode unpadded base64url. Returns `undefined` (never throws) for a character
 * outside the alphabet, `=` padding, an impossible length, or non-zero unused
 * trailing bits.
 */
export const decodeBase64Url = (input: string): Uint8Array<ArrayBuffer> | undefined => {
  const length = input.length
  const rest = length % 4
  if (rest === 1) return undefined
  const out = new Uint8Array(decodedByteLength(length))
  const whole = length - rest
  let o = 0
  let i = 0
  for (; i < whole; i += 4) {
    const a = sextet(input, i)
    const b = sextet(input, i + 1)
    const c = sextet(input, i + 2)
    const d = sextet(input, i + 3)
    if ((a | b | c | d) < 0) return undefined
    const n = (a << 18) | (b << 12) | (c << 6) | d
    out[o++] = n >>> 16
    out[o++] = (n >>> 8) & 255
    out[o++] = n & 255
  }
  if (rest === 2) {
    const a = sextet(input, i)
    const b = sextet(input, i + 1)
    if ((a | b) < 0 || (b & 15) !== 0) return undefined
    out[o] = (a << 2) | (b >>> 4)
  } else if (rest === 3) {
    const a = sextet(input, i)
    const b = sextet(input, i + 1)
    const c = sextet(input, i + 2)
    if ((a | b | c) < 0 || (c & 3) !== 0) return undefined
    const n = (a << 18) | (b << 12) | (c << 6)
    out[o++] = n >>> 16
    out[o] = (n >>> 8) & 255
  }
  return out
}

/**
 * A strict unpadded base64url codec. The envelope helpers take one, so the
 * `node:crypto` layer can plug in a `Buffer`-backed codec with the same
 * strictness while the Workers build uses the plain JavaScript one.
 */
export interface Base64UrlCodec<B extends Uint8Array = Uint8Array> {
  readonly encode: (bytes: Uint8Array) => string
  /** `undefined` unless `input` is the one canonical unpadded base64url encoding of some bytes. */
  readonly decode: (input: string) => B | undefined
}

/** The plain JavaScript codec (runs everywhere). */
export const base64Url: Base64UrlCodec<Uint8Array<ArrayBuffer>> = {
  encode: encodeBase64Url,
  decode: decodeBase64Url
}
