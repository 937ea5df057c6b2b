import type { RefreshTokenRecord } from "../schema/token.ts"
import type { NewRecord, NewRefreshToken } from "../services/TokenStore.ts"
import { Duration } from "effect"

/** Anything with an expiry instant. */
export interface Expiring {
  readonly expiresAt: number
}

/** A record is live strictly before its expiry instant: at `expiresAt` it is gone. */
export const isLive = (record: Expiring, now: number): boolean => now < record.expiresAt

const ttlMillis = (ttl: Duration.DurationInput | undefined, fallback: number): number =>
  ttl === undefined ? fallback : Duration.toMillis(Duration.decode(ttl))

/** Turn a `NewRecord` into the stored record: `createdAt` now, `expiresAt` now + its TTL. */
export const stamp = <A extends Expiring & { readonly createdAt: number }>(
  input: NewRecord<A>,
  now: number,
  defaultTtl: number
): A => {
  const { ttl, ...fields } = input
  return { ...fields, createdAt: now, expiresAt: now + ttlMillis(ttl, defaultTtl) } as unknown as A
}

/** The first refresh token of a grant: generation 0 of the grant's family, never past the chain's end. */
export const stampRefreshToken = (
  input: NewRefreshToken,
  now: number,
  defaultTtl: number,
  grantExpiresAt: number | undefined
): RefreshTokenRecord => {
  const { absoluteExpiresAt: requested, ttl, ...fields } = input
  const absoluteExpiresAt = requested ?? grantExpiresAt ?? now + defaultTtl
  return {
    ...fields,
    familyId: input.grantId,
    generation: 0,
    createdAt: now,
    expiresAt: Math.min(now + ttlMillis(ttl, defaultTtl), absoluteExpiresAt),
    absoluteExpiresAt
  }
}

/** The record that replaces `previous` on rotation: next generation, fresh TTL, same chain end. */
export const successorOf = (previous: RefreshTokenRecord, now: number, ttl: number): RefreshTokenRecord => {
  const { rotatedAt: _rotatedAt, ...fields } = previous
  return {
    ...fields,
    generation: previous.generation + 1,
    createdAt: now,
    expiresAt: Math.min(now + ttl, previous.absoluteExpiresAt)
  }
}

/**
 * What presenting a refresh token means, given its record and the record of
 * its successor (if it was rotated):
 * - `Rotate`: live and never rotated;
 * - `GraceReplay`: rotated within the grace window, and its successor is still the live, unrotated head;
 * - `Reuse`: any other presentation of a rotated token;
 * - `NotFound`: unknown or expired.
 */
export type RotationDecision = "Rotate" | "GraceReplay" | "Reuse" | "NotFound"

export const decideRotation = (
  presented: RefreshTokenRecord | undefined,
  successor: RefreshTokenRecord | undefined,
  now: number,
  graceWindow: number
): RotationDecision => {
  if (presented === undefined || !isLive(presented, now)) return "NotFound"
  if (presented.rotatedAt === undefined) return "Rotate"
  const withinGrace = now - presented.rotatedAt <= graceWindow
  const successorIsHead = successor !== undefined && isLive(successor, now) && successor.rotatedAt === undefined
  return withinGrace && successorIsHead ? "GraceReplay" : "Reuse"
}
