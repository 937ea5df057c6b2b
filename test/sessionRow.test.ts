import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck as fc, ParseResult } from "effect"
import { type SessionRow, sessionOfRow, sessionRowOf } from "../src/internal/sessionRow.ts"
import { Session } from "../src/schema/session.ts"
import { StoreError } from "../src/services/StoreError.ts"

const decodeSession = ParseResult.decodeUnknownEither(Session)

/** A session's row, or one with a column replaced by anything. */
const rows = fc.tuple(
  Arbitrary.make(Session),
  fc.constantFrom<keyof SessionRow>(
    "id", "api_key_hash", "subject", "protocol_version", "client_info", "created_at", "last_accessed_at", "idle_expires_at",
    "absolute_expires_at"
  ),
  fc.oneof(fc.anything(), fc.double(), fc.integer({ min: -5, max: 5 }), fc.constant(null)),
  fc.boolean()
).map(([session, column, other, replace]) => {
  const row: Record<string, unknown> = { ...sessionRowOf(session) }
  if (replace) row[column] = other
  return row as unknown as SessionRow
})

describe("a session row as a Session", () => {
  it("is the session that was written, and a row with a column no session can hold is Corrupt", () => {
    fc.assert(fc.property(Arbitrary.make(Session), (session) => {
      expect(sessionOfRow(sessionRowOf(session), "test")).toEqual(session)
    }), { numRuns: 1_000 })
    fc.assert(fc.property(rows, (row) => {
      const result = sessionOfRow(row, "test")
      // What decoding the mapped value through the Schema says (client info parsed first, as the store does).
      let clientInfo: unknown
      let parsed = true
      if (row.client_info !== null) {
        try {
          clientInfo = typeof row.client_info === "string" ? JSON.parse(row.client_info) : Symbol("not text")
        } catch {
          parsed = false
        }
      }
      const expected: Either.Either<Session, unknown> = parsed
        ? decodeSession({
          id: row.id,
          apiKeyHash: row.api_key_hash,
          ...(row.subject === null ? {} : { subject: row.subject }),
          initialized: row.initialized === 1,
          ...(row.protocol_version === null ? {} : { protocolVersion: row.protocol_version }),
          ...(clientInfo === undefined ? {} : { clientInfo }),
          createdAt: row.created_at,
          lastAccessedAt: row.last_accessed_at,
          idleExpiresAt: row.idle_expires_at,
          absoluteExpiresAt: row.absolute_expires_at
        })
        : Either.left("unparsable")
      if (Either.isRight(expected)) expect(result).toEqual(expected.right)
      else expect(result).toBeInstanceOf(StoreError)
      if (result instanceof StoreError) expect(result.reason).toBe("Corrupt")
    }), { numRuns: 3_000 })
  })
})
