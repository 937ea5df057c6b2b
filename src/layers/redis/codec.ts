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

const parse = (json: unknown, method: string): Either.Either<unknown, StoreError> => {
  if (typeof json !== "string") return Either.left(corrupt(method))
  try {
    return Either.right(JSON.parse(json))
  } catch (error) {
    return Either.left(corrupt(method, error))
  }
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
  const decode = guardedDecode(schema)
  const guard = compileGuard(schema)
  return {
    encode: (value, method) =>
      guard !== undefined && guard(value) ? Either.right(JSON.stringify(value)) : Either.match(encode(value), {
        onLeft: (error) =>
          Either.left(new StoreError({ reason: "Invalid", method, description: "value does not encode", cause: error })),
        onRight: (encoded) => Either.right(JSON.stringify(encoded))
      }),
    decode: (json, method) =>
      Either.flatMap(parse(json, method), (value) => Either.mapLeft(decode(value), (error) => corrupt(method, error)))
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

// ---------------------------------------------------------------------------
// Refresh tokens: hash fields b (the fields rotation never changes, as JSON),
// g, n, c, x, ax, and once rotated rot, s (successor key), p (sealed pair).

const RefreshBase = RefreshTokenRecord.pipe(Schema.omit("generation", "createdAt", "expiresAt", "rotatedAt"))
const refreshBase = jsonCodec(RefreshBase)
const decodeRefresh = guardedDecode(RefreshTokenRecord)

/** The hash fields of a new refresh token (`g` and `x` are written by the script). */
export const refreshFields = (record: RefreshTokenRecord, method: string): Either.Either<Array<string>, StoreError> =>
  Either.map(refreshBase.encode(record, method), (b) => [
    "b",
    b,
    "n",
    String(record.generation),
    "c",
    String(record.createdAt),
    "ax",
    String(record.absoluteExpiresAt)
  ])

/** A refresh token from its stored parts. */
export const refreshRecord = (
  b: unknown,
  n: unknown,
  c: unknown,
  x: unknown,
  rotatedAt: unknown,
  method: string
): Either.Either<RefreshTokenRecord, StoreError> =>
  Either.flatMap(parse(b, method), (fields) =>
    Either.mapLeft(
      decodeRefresh({
        ...(typeof fields === "object" ? fields : {}),
        generation: int(n),
        createdAt: int(c),
        expiresAt: int(x),
        ...(rotatedAt === null || rotatedAt === undefined ? {} : { rotatedAt: int(rotatedAt) })
      }),
      (error) => corrupt(method, error)
    ))

// ---------------------------------------------------------------------------
// Sessions: hash fields d (id, apiKeyHash, subject, createdAt as JSON), k,
// i, pv, ci (JSON), la, ie, ae. Scripts return them in this order.

/** The session hash fields, in the order `HMGET` and the scripts return them. */
export const SESSION_FIELDS = ["d", "k", "i", "pv", "ci", "la", "ie", "ae"] as const

const SessionBase = Session.pipe(Schema.pick("id", "apiKeyHash", "subject", "createdAt"))
const sessionBase = jsonCodec(SessionBase)
const clientInfo = jsonCodec(ClientInfo)
const decodeSession = guardedDecode(Session)

/** The hash fields of a session. */
export const sessionFields = (session: Session, method: string): Either.Either<Array<string>, StoreError> =>
  Either.flatMap(sessionBase.encode(session, method), (d) =>
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

/** A session from its fields, in `SESSION_FIELDS` order. */
export const sessionFromFields = (reply: unknown, method: string): Either.Either<Session, StoreError> =>
  Either.flatMap(array(reply, method), (f) =>
    Either.flatMap(parse(f[0], method), (base) => {
      const ci = f[4]
      const info = ci === null || ci === undefined ? Either.right(undefined) : Either.map(parse(ci, method), (v) => v)
      return Either.flatMap(info, (clientInfoValue) =>
        Either.mapLeft(
          decodeSession({
            ...(typeof base === "object" ? base : {}),
            initialized: f[2] === "1" ? true : f[2] === "0" ? false : undefined,
            ...(typeof f[3] === "string" ? { protocolVersion: f[3] } : {}),
            ...(clientInfoValue === undefined ? {} : { clientInfo: clientInfoValue }),
            lastAccessedAt: int(f[5]),
            idleExpiresAt: int(f[6]),
            absoluteExpiresAt: int(f[7])
          }),
          (error) => corrupt(method, error)
        ))
    }))
