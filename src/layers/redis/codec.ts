/**
 * How records are laid out in Redis, and how replies are read back. Every
 * stored value is decoded with the record's Schema: anything unexpected is a
 * `StoreError` `Corrupt`, never a defect.
 */
import { Either, Schema } from "effect"
import { compileGuard } from "../../internal/guard.ts"
import { ClientInfo, Session } from "../../schema/session.ts"
import { RefreshTokenRecord } from "../../schema/token.ts"
import type { SessionPatch } from "../../services/SessionStore.ts"
import { StoreError } from "../../services/StoreError.ts"

/** The error for a stored value (or script reply) that is not what the layer wrote. */
export const corrupt = (method: string, cause?: unknown): StoreError =>
  new StoreError({
    reason: "Corrupt",
    method,
    description: "stored value does not decode",
    ...(cause === undefined ? {} : { cause })
  })

/** A Schema as JSON text: encode before writing, decode what was read. */
export interface JsonCodec<A> {
  readonly encode: (value: A, method: string) => Either.Either<string, StoreError>
  readonly decode: (json: unknown, method: string) => Either.Either<A, StoreError>
}

/**
 * Decode with `schema`, through its compiled guard first where it has one: a
 * well-formed value is returned as it is (what decoding would return), and
 * only anything else goes through the decoder (see `internal/guard.ts`).
 */
const guardedDecode = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownEither(schema)
  const guard = compileGuard(schema)
  return guard === undefined ? decode : (value: unknown) => guard(value) ? Either.right(value) : decode(value)
}

/** A `JsonCodec` over a Schema: encoding failures are `Invalid`, decoding failures `Corrupt`. */
export const jsonCodec = <A, I>(schema: Schema.Schema<A, I>): JsonCodec<A> => {
  const encode = Schema.encodeEither(schema)
  const decode = Schema.decodeUnknownEither(schema)
  const guard = compileGuard(schema)
  return {
    encode: (value, method) =>
      guard !== undefined && guard(value) ? Either.right(JSON.stringify(value)) : Either.match(encode(value), {
        onLeft: (error) =>
          Either.left(new StoreError({ reason: "Invalid", method, description: "value does not encode", cause: error })),
        onRight: (encoded) => Either.right(JSON.stringify(encoded))
      }),
    // The hot path of every read: one JSON.parse and the guard, no intermediate Either.
    decode: (json, method) => {
      if (typeof json !== "string") return Either.left(corrupt(method))
      let value: unknown
      try {
        value = JSON.parse(json)
      } catch (error) {
        return Either.left(corrupt(method, error))
      }
      if (guard !== undefined && guard(value)) return Either.right(value)
      return Either.mapLeft(decode(value), (error) => corrupt(method, error))
    }
  }
}

// ---------------------------------------------------------------------------
// Replies

/** A reply that must be an array. */
export const array = (reply: unknown, method: string): Either.Either<ReadonlyArray<unknown>, StoreError> =>
  Array.isArray(reply) ? Either.right(reply) : Either.left(corrupt(method))

/** A reply that must be a string. */
export const string = (reply: unknown, method: string): Either.Either<string, StoreError> =>
  typeof reply === "string" ? Either.right(reply) : Either.left(corrupt(method))

/** A stored integer (Redis returns them as strings or numbers); `NaN` when it is not one, which Schema refuses. */
export const int = (value: unknown): number =>
  typeof value === "number" ? value : typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : Number.NaN

/** A stored JSON object, parsed (`undefined`: not a string holding an object). */
const parseObject = (json: unknown): Record<string, unknown> | undefined => {
  if (typeof json !== "string") return undefined
  const value: unknown = JSON.parse(json)
  return typeof value === "object" && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : undefined
}

// ---------------------------------------------------------------------------
// Refresh tokens: hash fields b (the fields rotation never changes, as JSON),
// g, n, c, x, ax, and once rotated rot, s (successor key), p (sealed pair).

const RefreshBase = RefreshTokenRecord.pipe(Schema.omit("generation", "createdAt", "expiresAt", "rotatedAt"))
const refreshBase = jsonCodec(RefreshBase)
const decodeRefresh = guardedDecode(RefreshTokenRecord)

const refreshBaseOf = (record: RefreshTokenRecord): typeof RefreshBase.Type => {
  const { createdAt: _c, expiresAt: _x, generation: _g, rotatedAt: _r, ...base } = record
  return base
}

/** The hash fields of a new refresh token (`g` and `x` are written by the script). */
export const refreshFields = (record: RefreshTokenRecord, method: string): Either.Either<Array<string>, StoreError> =>
  // Only the base's fields go to the encoder: with the others its guard refuses the value and Schema strips them (slow).
  Either.map(refreshBase.encode(refreshBaseOf(record), method), (b) => [
    "b",
    b,
    "n",
    String(record.generation),
    "c",
    String(record.createdAt),
    "ax",
    String(record.absoluteExpiresAt)
  ])

/**
 * A refresh token from its stored parts: assembled on the object `JSON.parse`
 * returns for `b` (as `sessionFromFields` does) and checked by the record's
 * compiled guard; anything else goes through the Schema (to strip, or to fail
 * as `Corrupt`).
 */
export const refreshRecord = (
  b: unknown,
  n: unknown,
  c: unknown,
  x: unknown,
  rotatedAt: unknown,
  method: string
): Either.Either<RefreshTokenRecord, StoreError> => {
  let record: Record<string, unknown> | undefined
  try {
    record = parseObject(b)
  } catch (error) {
    return Either.left(corrupt(method, error))
  }
  if (record === undefined) return Either.left(corrupt(method))
  record.generation = int(n)
  record.createdAt = int(c)
  record.expiresAt = int(x)
  if (rotatedAt !== null && rotatedAt !== undefined) record.rotatedAt = int(rotatedAt)
  return Either.mapLeft(decodeRefresh(record), (error) => corrupt(method, error))
}

// ---------------------------------------------------------------------------
// Sessions: hash fields d (id, apiKeyHash, subject, createdAt as JSON), k,
// i, pv, ci (JSON), la, ie, ae. Scripts return them in this order.

/** The session hash fields, in the order `HMGET` and the scripts return them. */
export const SESSION_FIELDS = ["d", "k", "i", "pv", "ci", "la", "ie", "ae"] as const

const SessionBase = Session.pipe(Schema.pick("id", "apiKeyHash", "subject", "createdAt"))
const sessionBase = jsonCodec(SessionBase)
const clientInfo = jsonCodec(ClientInfo)
const decodeSession = guardedDecode(Session)

const sessionBaseOf = ({ apiKeyHash, createdAt, id, subject }: Session): typeof SessionBase.Type =>
  subject === undefined ? { id, apiKeyHash, createdAt } : { id, apiKeyHash, subject, createdAt }

/** The hash fields of a session. */
export const sessionFields = (session: Session, method: string): Either.Either<Array<string>, StoreError> =>
  // Only the base's fields go to the encoder (see `refreshFields`).
  Either.flatMap(sessionBase.encode(sessionBaseOf(session), method), (d) =>
    Either.map(patchFields(session, method), (patch) => [
      "d",
      d,
      "k",
      session.apiKeyHash,
      ...patch,
      "la",
      String(session.lastAccessedAt),
      "ie",
      String(session.idleExpiresAt),
      "ae",
      String(session.absoluteExpiresAt)
    ]))

/** The hash fields a patch (or a whole session) sets. */
export const patchFields = (
  patch: { readonly [K in keyof SessionPatch]?: SessionPatch[K] | undefined },
  method: string
): Either.Either<Array<string>, StoreError> => {
  const fields: Array<string> = []
  if (patch.initialized !== undefined) fields.push("i", patch.initialized ? "1" : "0")
  if (patch.protocolVersion !== undefined) fields.push("pv", patch.protocolVersion)
  if (patch.clientInfo === undefined) return Either.right(fields)
  return Either.map(clientInfo.encode(patch.clientInfo, method), (ci) => [...fields, "ci", ci])
}

/**
 * A session from its fields, in `SESSION_FIELDS` order: the hot path of every
 * `SessionStore.get`, so the session is assembled on the object `JSON.parse`
 * returns for `d` (later fields override anything `d` holds, as a spread
 * would) and checked by `Session`'s compiled guard; anything else goes
 * through the Schema (to strip, or to fail as `Corrupt`).
 */
export const sessionFromFields = (reply: unknown, method: string): Either.Either<Session, StoreError> => {
  if (!Array.isArray(reply)) return Either.left(corrupt(method))
  const f: ReadonlyArray<unknown> = reply
  let session: Record<string, unknown> | undefined
  let info: unknown
  try {
    session = parseObject(f[0])
    info = f[4] === null || f[4] === undefined ? undefined : parseObject(f[4]) ?? null
  } catch (error) {
    return Either.left(corrupt(method, error))
  }
  if (session === undefined || info === null) return Either.left(corrupt(method))
  const initialized = f[2] === "1" ? true : f[2] === "0" ? false : undefined
  if (initialized === undefined) return Either.left(corrupt(method))
  session.initialized = initialized
  if (typeof f[3] === "string") session.protocolVersion = f[3]
  if (info !== undefined) session.clientInfo = info
  session.lastAccessedAt = int(f[5])
  session.idleExpiresAt = int(f[6])
  session.absoluteExpiresAt = int(f[7])
  return Either.mapLeft(decodeSession(session), (error) => corrupt(method, error))
}
