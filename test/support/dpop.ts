/**
 * DPoP proofs as a client makes them (RFC 9449 §4.2), written here with jose
 * and node:crypto independently of the server's checker: keys, proofs with any
 * claim or header changed, and deliberately broken proofs (`alg: none`, HS256,
 * a private key in `jwk`, a proof signed by another key).
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose"
import { createHash, createHmac, randomBytes } from "node:crypto"

/** A client's DPoP key pair. */
export interface DpopKey {
  readonly alg: string
  readonly privateKey: CryptoKey
  readonly publicJwk: JWK
  readonly privateJwk: JWK
  /** The RFC 7638 thumbprint: what tokens bound to this key carry as `cnf.jkt`. */
  readonly jkt: string
}

/** A fresh key pair for `alg` (ES256 by default). */
export const dpopKey = async (alg = "ES256"): Promise<DpopKey> => {
  const pair = await generateKeyPair(alg, { extractable: true })
  const publicJwk = await exportJWK(pair.publicKey)
  return {
    alg,
    privateKey: pair.privateKey,
    publicJwk,
    privateJwk: await exportJWK(pair.privateKey),
    jkt: await calculateJwkThumbprint(publicJwk, "sha256")
  }
}

/** The claims of a proof; `jti` defaults to 16 random bytes. `null` leaves a claim out. */
export interface ProofClaims {
  readonly htm: string
  readonly htu: string
  /** Seconds since the epoch. */
  readonly iat: number
  readonly jti?: string | null
  readonly ath?: string
  readonly nonce?: string
}

/** The `ath` of an access token, computed with node:crypto. */
export const ath = (accessToken: string): string => createHash("sha256").update(accessToken, "ascii").digest("base64url")

/** A proof signed with `key`; `header` replaces or adds header members (e.g. another `jwk` or `typ`). */
export const signProof = (key: DpopKey, claims: ProofClaims, header: Record<string, unknown> = {}): Promise<string> => {
  const { jti, ...rest } = claims
  const payload: Record<string, unknown> = { ...rest, ...(jti === null ? {} : { jti: jti ?? randomBytes(16).toString("base64url") }) }
  return new SignJWT(payload).setProtectedHeader({ alg: key.alg, typ: "dpop+jwt", jwk: key.publicJwk, ...header }).sign(key.privateKey)
}

const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url")

/** An unsigned proof (`alg: none`) carrying `key`'s public JWK. */
export const unsignedProof = (key: DpopKey, claims: ProofClaims): string =>
  `${part({ alg: "none", typ: "dpop+jwt", jwk: key.publicJwk })}.${part({ jti: randomBytes(16).toString("base64url"), ...claims })}.`

/** A proof MACed with HS256 under `secret`, with an `oct` JWK of that secret in its header. */
export const hmacProof = (secret: Buffer, claims: ProofClaims): string => {
  const signingInput = `${part({ alg: "HS256", typ: "dpop+jwt", jwk: { kty: "oct", k: secret.toString("base64url") } })}.${
    part({ jti: randomBytes(16).toString("base64url"), ...claims })
  }`
  return `${signingInput}.${createHmac("sha256", secret).update(signingInput).digest("base64url")}`
}
