/**
 * The signing key lifecycle as pure functions over the stored set:
 * `next` (published, not yet signing) -> `active` (signs) -> `retiring`
 * (verifies what it signed until it drops out of the set).
 */
import type { SigningKey, SigningKeySet } from "../schema/signingKey.ts"

export const activeKey = (set: SigningKeySet): SigningKey | undefined => set.keys.find((k) => k.status === "active")

export const nextKey = (set: SigningKeySet): SigningKey | undefined => set.keys.find((k) => k.status === "next")

/** When the set is due to rotate: its active key's activation plus the period; now when it has no active key. */
export const rotationDueAt = (set: SigningKeySet, periodMillis: number): number => {
  const active = activeKey(set)
  return active === undefined ? 0 : (active.activatedAt ?? active.createdAt) + periodMillis
}

export const isRotationDue = (set: SigningKeySet, now: number, periodMillis: number): boolean =>
  now >= rotationDueAt(set, periodMillis)

/** Fresh keys a rotation of `set` consumes: one new next, plus a new active when there is no next to promote. */
export const freshKeysNeeded = (set: SigningKeySet | undefined): number =>
  set === undefined || nextKey(set) === undefined ? 2 : 1

const asNext = (key: SigningKey): SigningKey => {
  const { activatedAt: _a, retiredAt: _r, ...rest } = key
  return { ...rest, status: "next" }
}

/** The first set: `fresh[0]` active from now, `fresh[1]` next. */
export const initialSet = (fresh: ReadonlyArray<SigningKey>, now: number): SigningKeySet => {
  const [first, second] = fresh
  if (first === undefined || second === undefined) throw new RangeError("initialSet needs two fresh keys")
  return { version: 1, keys: [{ ...asNext(first), status: "active", activatedAt: now }, asNext(second)] }
}

/**
 * One rotation: next -> active, active -> retiring, a fresh key -> next;
 * retiring keys beyond `maxKeys` (oldest first) leave the set. The version
 * moves on by one.
 */
export const rotatedSet = (
  set: SigningKeySet,
  fresh: ReadonlyArray<SigningKey>,
  now: number,
  maxKeys: number
): SigningKeySet => {
  const next = nextKey(set)
  const active = activeKey(set)
  const promoted = next ?? fresh[0]
  const newNext = next === undefined ? fresh[1] : fresh[0]
  if (promoted === undefined || newNext === undefined) throw new RangeError("rotatedSet needs fresh keys")
  const retiring = set.keys
    .filter((k) => k.status === "retiring")
    .sort((a, b) => (b.retiredAt ?? b.createdAt) - (a.retiredAt ?? a.createdAt))
  const keys: Array<SigningKey> = [
    asNext(newNext),
    { ...promoted, status: "active", activatedAt: now },
    ...(active === undefined ? [] : [{ ...active, status: "retiring" as const, retiredAt: now }]),
    ...retiring
  ]
  return { version: set.version + 1, keys: keys.slice(0, Math.max(3, maxKeys)) }
}
