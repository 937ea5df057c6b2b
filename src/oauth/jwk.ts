/**
 * JWK plumbing for the `Jwks` layer: generating signing keys, importing JWKs
 * as WebCrypto keys (through `jose`, so it runs on Node and on Workers), and
 * the public form that may be published.
 */
import { Effect, Redacted, Schema } from "effect"
import { calculateJwkThumbprint, type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK } from "jose"
import { type Jwk, SigningAlgorithm, type SigningKey } from "../schema/signingKey.ts"
import { StoreError } from "../services/StoreError.ts"

/** The members of a JWK that may be published: key type, curve and public parameters. */
const PUBLIC_MEMBERS = ["kty", "crv", "n", "e", "x", "y"] as const

/** The public form of a JWK, with its `kid` and `alg` and `use: sig`. Private members never pass. */
export const publicJwk = (jwk: Jwk, kid: string, alg: SigningAlgorithm): Jwk => {
  const out: Record<string, unknown> = {}
  for (const member of PUBLIC_MEMBERS) if (jwk[member] !== undefined) out[member] = jwk[member]
  return { ...out, kid, alg, use: "sig" }
}

const isAlgorithm = Schema.is(SigningAlgorithm)

/**
 * The algorithm a JWK is for: its `alg` member when that is one we sign with,
 * else by key type (RSA: RS256, EC P-256: ES256, OKP Ed25519: EdDSA).
 */
export const algorithmOf = (jwk: Jwk): SigningAlgorithm | undefined => {
  if (jwk["alg"] !== undefined) return isAlgorithm(jwk["alg"]) ? jwk["alg"] : undefined
  if (jwk["kty"] === "RSA") return "RS256"
  if (jwk["kty"] === "EC" && jwk["crv"] === "P-256") return "ES256"
  if (jwk["kty"] === "OKP" && jwk["crv"] === "Ed25519") return "EdDSA"
  return undefined
}

/** Whether a JWK carries private key material. */
export const isPrivateJwk = (jwk: Jwk): boolean => jwk["d"] !== undefined

const invalid = (method: string, description: string, cause?: unknown) =>
  new StoreError({ reason: "Invalid", method, description, ...(cause === undefined ? {} : { cause }) })

/** A JWK as `jose` types it. */
const asJoseJwk = (jwk: Jwk): JWK => ({ ...jwk }) as JWK

/** Import a JWK as a WebCrypto key for `alg`; `Invalid` when it is not a usable key of that algorithm. */
export const importKey = (jwk: Jwk, alg: SigningAlgorithm, method: string): Effect.Effect<CryptoKey, StoreError> =>
  Effect.tryPromise({
    try: () => importJWK(asJoseJwk(jwk), alg),
    catch: (cause) => invalid(method, `key is not a usable ${alg} key`, cause)
  }).pipe(
    Effect.flatMap((key) =>
      key instanceof Uint8Array ? Effect.fail(invalid(method, "symmetric keys are not accepted")) : Effect.succeed(key)
    )
  )

/** The RFC 7638 thumbprint of a public JWK: the `kid` of keys that come without one. */
export const thumbprint = (jwk: Jwk, method: string): Effect.Effect<string, StoreError> =>
  Effect.tryPromise({
    try: () => calculateJwkThumbprint(asJoseJwk(jwk), "sha256"),
    catch: (cause) => invalid(method, "key has no thumbprint", cause)
  })

/** A freshly generated key pair: the storable record and the imported keys, so nothing is imported twice. */
export interface GeneratedKey {
  readonly key: SigningKey
  readonly publicKey: CryptoKey
  readonly privateKey: CryptoKey
}

/** Generate a `next` key for `alg` (RSA 2048, P-256 or Ed25519), its `kid` the public key's thumbprint. */
export const generateSigningKey = (alg: SigningAlgorithm, now: number): Effect.Effect<GeneratedKey, StoreError> =>
  Effect.gen(function*() {
    const method = "Jwks.generateKey"
    const pair = yield* Effect.tryPromise({
      try: () => generateKeyPair(alg, { extractable: true }),
      catch: (cause) => invalid(method, `this runtime cannot generate ${alg} keys`, cause)
    })
    const [publicMembers, privateMembers] = yield* Effect.tryPromise({
      try: () => Promise.all([exportJWK(pair.publicKey), exportJWK(pair.privateKey)]),
      catch: (cause) => invalid(method, "generated key does not export", cause)
    })
    const kid = yield* thumbprint({ ...publicMembers }, method)
    const key: SigningKey = {
      kid,
      alg,
      status: "next",
      publicJwk: publicJwk({ ...publicMembers }, kid, alg),
      privateJwk: Redacted.make({ ...privateMembers, kid, alg }),
      createdAt: now
    }
    return { key, publicKey: pair.publicKey, privateKey: pair.privateKey }
  })
