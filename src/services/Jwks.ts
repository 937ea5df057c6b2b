import { Context, type Duration, type Effect, Schema } from "effect"
import type { Jwk, SigningAlgorithm, SigningKeyStatus } from "../schema/signingKey.ts"
import type { StoreError } from "./StoreError.ts"

/** The claims of a JWT, as JSON members. */
export type JwtClaims = Readonly<Record<string, unknown>>

/** A JSON Web Key Set as published at the JWKS endpoint: public keys only (RFC 7517 §5). */
export interface PublicJwks {
  readonly keys: ReadonlyArray<Jwk>
}

/** What a verification checks beyond the signature and `exp` (always required). */
export interface JwtVerifyOptions {
  /** The `iss` the token must carry. */
  readonly issuer?: string
  /** The `aud` the token must carry (one of them, when several are given). */
  readonly audience?: string | ReadonlyArray<string>
  /** Clock skew tolerated on `exp`, `nbf` and `iat` (default none). */
  readonly clockTolerance?: Duration.DurationInput
}

/** A token whose signature and time claims checked out. */
export interface VerifiedJwt {
  readonly kid: string
  readonly alg: SigningAlgorithm
  /** The protected header's `typ`, when it has one (`at+jwt` for RFC 9068 access tokens). */
  readonly typ?: string
  readonly claims: JwtClaims
}

/** How to sign. */
export interface JwtSignOptions {
  /** The header's `typ` (default `JWT`; RFC 9068 access tokens use `at+jwt`). */
  readonly typ?: string
}

/** A signed compact JWS and the key that signed it. */
export interface SignedJwt {
  readonly token: string
  readonly kid: string
  readonly alg: SigningAlgorithm
}

/** One key the service knows, without key material. */
export interface SigningKeyInfo {
  readonly kid: string
  readonly alg: SigningAlgorithm
  /** `configured` keys come from the options (seed 002's `signKey` / `jwks`) and are never rotated. */
  readonly status: SigningKeyStatus | "configured"
  /** Whether this instance signs with it. */
  readonly signing: boolean
}

/** Why a JWT was not accepted (malformed, unknown key, wrong algorithm, bad signature, expired, wrong issuer or audience). */
export class JwtRejected extends Schema.TaggedError<JwtRejected>()("JwtRejected", { description: Schema.String }) {}

/**
 * Signing keys for JWT access tokens (RS256 by default, ES256 and EdDSA
 * selectable). Generated keys live in the `SigningKeyStore`, so every instance
 * and every restart signs and verifies with the same set, and move through
 * next -> active -> retiring: the published set holds all of them, so a token
 * signed before a rotation verifies until it expires.
 *
 * Verification requires a `kid` that names a known key exactly, accepts only
 * that key's algorithm, and requires `exp`. Time comes from Effect's `Clock`.
 */
export class Jwks extends Context.Tag("mcp-oauth-store/Jwks")<Jwks, Jwks.Service>() {}

export declare namespace Jwks {
  export interface Service {
    /** Sign `claims` with the active key (header: `alg`, `kid`, `typ`, default `JWT`). The caller sets `iat`/`exp`. */
    readonly sign: (claims: JwtClaims, options?: JwtSignOptions) => Effect.Effect<SignedJwt, StoreError>
    /** Verify a compact JWS: exact `kid`, pinned algorithm, required `exp`; every failure is `JwtRejected`. */
    readonly verify: (token: string, options?: JwtVerifyOptions) => Effect.Effect<VerifiedJwt, JwtRejected | StoreError>
    /** The public keys to publish: every generated key (next, active, retiring) and every configured one. */
    readonly publicJwks: Effect.Effect<PublicJwks>
    /** The keys this instance knows, newest state first. */
    readonly keys: Effect.Effect<ReadonlyArray<SigningKeyInfo>>
    /** Re-read the shared key set (the rotation fiber does this on its own schedule). */
    readonly reload: Effect.Effect<void, StoreError>
    /**
     * Rotate now, whether due or not: next -> active, active -> retiring, a new
     * next. Compare-and-set on the stored version, retried on conflict.
     * Fails with `Invalid` when the keys are configured rather than generated.
     */
    readonly rotate: Effect.Effect<void, StoreError>
  }
}
