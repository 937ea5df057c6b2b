import { Schema } from "effect"
import { EpochMillis } from "./common.ts"

/** JWS algorithms for access tokens: RS256 by default (seed 002), ES256 and EdDSA selectable. */
export const SigningAlgorithm = Schema.Literal("RS256", "ES256", "EdDSA")
export type SigningAlgorithm = typeof SigningAlgorithm.Type

/**
 * A key's place in the rotation: `next` is published before it signs (so
 * verifiers have it cached), `active` signs, `retiring` only verifies tokens it
 * signed until they have expired.
 */
export const SigningKeyStatus = Schema.Literal("next", "active", "retiring")
export type SigningKeyStatus = typeof SigningKeyStatus.Type

/** A JWK as JSON members. */
export const Jwk = Schema.Record({ key: Schema.String, value: Schema.Unknown })
export type Jwk = typeof Jwk.Type

/** One signing key of the set: its private JWK (stored sealed), algorithm, id and lifecycle status. */
export const SigningKey = Schema.Struct({
  kid: Schema.String,
  alg: SigningAlgorithm,
  status: SigningKeyStatus,
  publicJwk: Jwk,
  /** The private JWK: sealed at rest by every store. */
  privateJwk: Schema.Redacted(Jwk),
  createdAt: EpochMillis,
  activatedAt: Schema.optional(EpochMillis),
  retiredAt: Schema.optional(EpochMillis)
})
export type SigningKey = typeof SigningKey.Type

/**
 * The signing key set every instance shares. `version` grows by one on each
 * write; writers compare-and-set on it so two instances rotating at once do
 * not fork the set.
 */
export const SigningKeySet = Schema.Struct({
  version: Schema.Number.pipe(Schema.int(), Schema.positive()),
  keys: Schema.Array(SigningKey)
})
export type SigningKeySet = typeof SigningKeySet.Type
