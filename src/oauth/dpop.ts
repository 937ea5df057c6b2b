/**
 * DPoP proofs (RFC 9449): checking the JWT a client sends in the `DPoP`
 * header (§4.3), remembering its `jti` so it is used once (§11.1), and the
 * server nonces (§8, §9). No HTTP here: the caller hands over the header's
 * value, the request's method and the URLs the request was addressed to.
 *
 * Checking is split in two so that strangers cannot write to the store: the
 * stateless checks (`checkDpopProof`: signature, claims, time, nonce, `ath`)
 * run first; the caller remembers the `jti` (`rememberDpopProof`) only once
 * the request has shown something only a token holder has (a code, a refresh
 * token, an access token bound to the proof's key).
 */
import { Clock, Context, Duration, Effect, Either, Layer, Option, Predicate, Schema } from "effect"
import { calculateJwkThumbprint, compactVerify, type CryptoKey, decodeProtectedHeader, importJWK, type JWK } from "jose"
import { InvalidDpopProof, UseDpopNonce } from "../errors/OAuthError.ts"
import { Crypto } from "../services/Crypto.ts"
import { ReplayCache } from "../services/ReplayCache.ts"
import type { StoreError } from "../services/StoreError.ts"
import { LruMap } from "../internal/lruMap.ts"
import { type DpopAlgorithm, OAuthConfig } from "./config.ts"
import { s256 } from "./pkce.ts"
import { normalizePercentEncoding } from "./resources.ts"
import { traced } from "../internal/traced.ts"

/** A DPoP proof as a request carries it, and what it must match. */
export interface DpopProofInput {
  /** The `DPoP` header's value as received (several headers, joined with commas, are refused). */
  readonly proof: string
  /** The request's method (`htm`). */
  readonly method: string
  /**
   * The URLs the request may have been addressed to (`htu`), without query:
   * the endpoint's public URL, and an alias of this server the request reached.
   */
  readonly urls: ReadonlyArray<string>
}

/** Where a proof is presented: a nonce issued by one is not accepted by the other (RFC 9449 §9). */
export type DpopEndpoint = "token" | "resource"

/** A proof that passed every stateless check. */
export interface CheckedDpopProof {
  /** The JWK SHA-256 thumbprint of the proof's key (RFC 7638): what tokens are bound to. */
  readonly jkt: string
  readonly jti: string
  /** `iat`, in milliseconds since the epoch. */
  readonly issuedAt: number
  readonly alg: DpopAlgorithm
}

/** Longer than any proof a real key makes (an RSA 4096 key's proof is about 1.5 KB). */
const MAX_PROOF_LENGTH = 8192
/** RFC 9449 §11.1: refuse unnecessarily large `jti` values. */
const MAX_JTI_LENGTH = 256
/** A compact JWS: three base64url parts (a second header joined with a comma never matches). */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/
/** Members only a private (or symmetric) JWK has. */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]
const KEY_TYPES = ["EC", "RSA", "OKP"]
/** The `ReplayCache` scope of proof ids. */
const REPLAY_SCOPE = "dpop"

const invalid = (description: string) => new InvalidDpopProof({ description })

const ProofClaims = Schema.parseJson(Schema.Struct({
  jti: Schema.String,
  htm: Schema.String,
  htu: Schema.String,
  iat: Schema.Finite,
  ath: Schema.optional(Schema.String),
  nonce: Schema.optional(Schema.String)
}))
const decodeClaims = Schema.decodeUnknownEither(ProofClaims)
const utf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * The comparable form of an `htu` or request URL (RFC 9449 §4.3 point 9):
 * query and fragment dropped, then RFC 3986 §6.2.2 and §6.2.3 normalization
 * (scheme and host in lower case, the default port dropped, an empty path
 * as `/`, dot segments resolved, percent-encoding normalized). `undefined`
 * unless it is an absolute http(s) URI.
 */
export const normalizeHtu = (uri: string): string | undefined => {
  if (!URL.canParse(uri)) return undefined
  const url = new URL(uri)
  if (url.protocol !== "https:" && url.protocol !== "http:") return undefined
  return `${url.protocol}//${url.host}${normalizePercentEncoding(url.pathname)}`
}

/** The `ath` of an access token: base64url SHA-256 of its ASCII value (RFC 9449 §4.2). */
export const accessTokenHash = (accessToken: string): Effect.Effect<string> => s256(accessToken)

/** A proof key, imported, with its RFC 7638 thumbprint. */
interface ProofKey {
  readonly key: CryptoKey
  readonly jkt: string
}

/**
 * Proof keys already imported, by algorithm and JWK: a client signs every
 * proof with one key, and importing it (WebCrypto `importKey`) costs more
 * than checking the signature. Optional: without it every proof's key is
 * imported afresh. `DpopKeyCache.layer(size)` keeps the `size` most recently
 * imported (default 10,000), first in first out: a hit moves nothing, so a
 * busy key never churns the map (see `LruMap.promote`), and an evicted key
 * costs one import.
 */
export class DpopKeyCache extends Context.Tag("mcp-oauth-store/DpopKeyCache")<DpopKeyCache, {
  readonly get: (id: string) => ProofKey | undefined
  readonly set: (id: string, key: ProofKey) => void
}>() {
  static readonly layer = (size = 10_000): Layer.Layer<DpopKeyCache> =>
    Layer.sync(DpopKeyCache, () => {
      const keys = new LruMap<string, ProofKey>()
      return {
        get: (id) => keys.get(id),
        set: (id, key) => {
          keys.set(id, key)
          if (keys.size > size) keys.evictOldest()
        }
      }
    })
}

/**
 * The proof's public key: present, public, of a signing key type; its
 * private members refused (§4.3 points 5, 7); imported for `alg` with its
 * thumbprint (or found in the `DpopKeyCache`).
 */
const proofKey = (header: Record<string, unknown>, alg: DpopAlgorithm): Effect.Effect<ProofKey, InvalidDpopProof> => {
  const jwk = header["jwk"]
  if (!Predicate.isRecord(jwk)) return Effect.fail(invalid("the proof must carry its public key in the jwk header"))
  if (PRIVATE_MEMBERS.some((member) => member in jwk)) return Effect.fail(invalid("the proof's jwk must not contain a private key"))
  if (typeof jwk["kty"] !== "string" || !KEY_TYPES.includes(jwk["kty"])) {
    return Effect.fail(invalid("the proof's jwk must be an EC, RSA or OKP public key"))
  }
  const publicJwk = { ...jwk } as JWK
  const id = `${alg} ${JSON.stringify(jwk)}`
  const imported = Effect.tryPromise({
    try: () => importJWK(publicJwk, alg),
    catch: () => invalid(`the proof's jwk is not a usable ${alg} public key`)
  }).pipe(
    Effect.flatMap((key) =>
      key instanceof Uint8Array || key.type !== "public"
        ? Effect.fail(invalid("the proof's jwk must be a public key"))
        : Effect.map(
          Effect.tryPromise({
            try: () => calculateJwkThumbprint(publicJwk, "sha256"),
            catch: () => invalid("the proof's jwk has no thumbprint")
          }),
          (jkt): ProofKey => ({ key, jkt })
        )
    )
  )
  return Effect.flatMap(Effect.serviceOption(DpopKeyCache), (cache) => {
    if (Option.isNone(cache)) return imported
    const found = cache.value.get(id)
    return found !== undefined ? Effect.succeed(found) : Effect.tap(imported, (key) => cache.value.set(id, key))
  })
}

/** The time window of a server nonce, by Effect's `Clock`. */
const nonceWindow = (now: number, lifetime: number): number => Math.floor(now / lifetime)

/** The nonce of one window at one endpoint: the window in base 36 and a MAC over it under `Crypto`'s lookup key. */
const nonceOf = (crypto: Crypto.Service, endpoint: DpopEndpoint, window: number): Effect.Effect<string> =>
  Effect.map(crypto.hash(`dpop-nonce\n${endpoint}\n${window}`), (mac) => `${window.toString(36)}.${mac.slice(0, 32)}`)

const NONCE = /^([0-9a-z]{1,12})\.([A-Za-z0-9_-]{32})$/

/**
 * The nonce a proof to `endpoint` must carry now (RFC 9449 §8, §9), when
 * nonces are required (`dpop.requireNonce`); `None` otherwise. It is the same
 * on every instance sharing the `Crypto` keyring, unpredictable without it,
 * and accepted during its window and the next.
 */
export const currentDpopNonce = (endpoint: DpopEndpoint): Effect.Effect<Option.Option<string>, never, OAuthConfig | Crypto> =>
  Effect.gen(function*() {
    const { dpop } = yield* OAuthConfig
    if (!dpop.requireNonce) return Option.none()
    const now = yield* Clock.currentTimeMillis
    return Option.some(yield* nonceOf(yield* Crypto, endpoint, nonceWindow(now, dpop.nonceLifetime)))
  })

/** Whether `nonce` is this endpoint's nonce of the current window or the one before. */
const acceptedNonce = (nonce: string, endpoint: DpopEndpoint, lifetime: number): Effect.Effect<boolean, never, Crypto> =>
  Effect.gen(function*() {
    const match = NONCE.exec(nonce)
    if (match === null) return false
    const window = Number.parseInt(match[1] ?? "", 36)
    const current = nonceWindow(yield* Clock.currentTimeMillis, lifetime)
    if (window !== current && window !== current - 1) return false
    const crypto = yield* Crypto
    return crypto.timingSafeEqual(yield* nonceOf(crypto, endpoint, window), nonce)
  })

/**
 * Check a DPoP proof without touching the store (RFC 9449 §4.3): one compact
 * JWT; `typ` `dpop+jwt`; an accepted asymmetric `alg`; a public `jwk` (no
 * private members) that verifies the signature; `jti` (at most 256
 * characters), `htm` equal to the method, `htu` equal to one of the request's
 * URLs once both are normalized; `iat` no older than `dpop.proofMaxAge` and
 * no further ahead than `dpop.clockSkew` (by Effect's `Clock`); with an access
 * token, `ath` its hash; with nonces required, a current nonce of this
 * endpoint (`UseDpopNonce` carrying the one to use). Every failure is
 * `InvalidDpopProof` with a fixed description (nothing from the proof is
 * echoed). The `jti` is not remembered here: see `rememberDpopProof`.
 */
export const checkDpopProof = (
  input: DpopProofInput,
  endpoint: DpopEndpoint,
  accessToken?: string
): Effect.Effect<CheckedDpopProof, InvalidDpopProof | UseDpopNonce, OAuthConfig | Crypto> =>
  Effect.gen(function*() {
    const { dpop } = yield* OAuthConfig
    const proof = input.proof.trim()
    if (proof.length > MAX_PROOF_LENGTH) return yield* invalid("the DPoP proof is too long")
    if (!COMPACT_JWS.test(proof)) return yield* invalid("the DPoP header must be exactly one JWT")
    const header = yield* Effect.try({
      try: () => decodeProtectedHeader(proof) as Record<string, unknown>,
      catch: () => invalid("the DPoP proof's header is not a JSON object")
    })
    const typ = header["typ"]
    if (typeof typ !== "string" || !["dpop+jwt", "application/dpop+jwt"].includes(typ.toLowerCase())) {
      return yield* invalid("the DPoP proof's typ must be dpop+jwt")
    }
    const alg = dpop.algorithms.find((accepted) => accepted === header["alg"])
    if (alg === undefined) return yield* invalid(`the DPoP proof's alg must be one of ${dpop.algorithms.join(" ")}`)
    const { jkt, key } = yield* proofKey(header, alg)
    const verified = yield* Effect.tryPromise({
      try: () => compactVerify(proof, key, { algorithms: [alg] }),
      catch: () => invalid("the DPoP proof's signature does not verify with its jwk")
    })
    const text = yield* Effect.try({
      try: () => utf8.decode(verified.payload),
      catch: () => invalid("the DPoP proof's payload is not UTF-8")
    })
    const claims = yield* Either.mapLeft(decodeClaims(text), () => invalid("the DPoP proof must carry jti, htm, htu and iat"))

    if (claims.jti.length === 0 || claims.jti.length > MAX_JTI_LENGTH) {
      return yield* invalid(`the DPoP proof's jti must be 1 to ${MAX_JTI_LENGTH} characters`)
    }
    if (claims.htm !== input.method) return yield* invalid("the DPoP proof's htm is not this request's method")
    const htu = normalizeHtu(claims.htu)
    if (htu === undefined || !input.urls.some((url) => normalizeHtu(url) === htu)) {
      return yield* invalid("the DPoP proof's htu is not this request's URI")
    }
    const now = yield* Clock.currentTimeMillis
    const issuedAt = claims.iat * 1000
    if (issuedAt > now + dpop.clockSkew) return yield* invalid("the DPoP proof's iat is in the future")
    if (now - issuedAt >= dpop.proofMaxAge) return yield* invalid("the DPoP proof is too old (iat)")
    if (accessToken !== undefined) {
      if (claims.ath === undefined) return yield* invalid("the DPoP proof must carry ath, the hash of the access token")
      const crypto = yield* Crypto
      if (!crypto.timingSafeEqual(yield* accessTokenHash(accessToken), claims.ath)) {
        return yield* invalid("the DPoP proof's ath is not the hash of this access token")
      }
    }
    if (dpop.requireNonce && (claims.nonce === undefined || !(yield* acceptedNonce(claims.nonce, endpoint, dpop.nonceLifetime)))) {
      const nonce = yield* currentDpopNonce(endpoint)
      return yield* new UseDpopNonce({
        description: claims.nonce === undefined
          ? "the DPoP proof must carry the server's nonce (DPoP-Nonce)"
          : "the DPoP proof's nonce is unknown or expired; use the one in DPoP-Nonce",
        ...(Option.isSome(nonce) ? { nonce: nonce.value } : {})
      })
    }
    const checked: CheckedDpopProof = { jkt, jti: claims.jti, issuedAt, alg }
    return checked
  }).pipe(traced("OAuth.checkDpopProof"))

/**
 * Remember a checked proof's `jti` (with its key) in the `ReplayCache` for
 * as long as the proof could be accepted (`iat` + `proofMaxAge` +
 * `clockSkew`), atomically across instances: the second presentation of the
 * same proof fails with `InvalidDpopProof`.
 */
export const rememberDpopProof = (
  proof: CheckedDpopProof
): Effect.Effect<void, InvalidDpopProof | StoreError, OAuthConfig | ReplayCache> =>
  Effect.gen(function*() {
    const { dpop } = yield* OAuthConfig
    const now = yield* Clock.currentTimeMillis
    const ttl = Math.max(1, proof.issuedAt + dpop.proofMaxAge + dpop.clockSkew - now)
    const sighting = yield* (yield* ReplayCache).remember(REPLAY_SCOPE, `${proof.jkt}.${proof.jti}`, Duration.millis(ttl))
    if (sighting === "Replayed") return yield* invalid("the DPoP proof was already used")
  }).pipe(traced("OAuth.rememberDpopProof"))
