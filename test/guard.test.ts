import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck as fc, Schema } from "effect"
import { compileGuard } from "../src/internal/guard.ts"
import { AuthorizationCode } from "../src/schema/code.ts"
import { ClientInfo, Session } from "../src/schema/session.ts"
import { AccessTokenRecord, Grant, IssuedPair, RefreshTokenRecord } from "../src/schema/token.ts"

const records = { AccessTokenRecord, AuthorizationCode, ClientInfo, Grant, RefreshTokenRecord, Session } as const

/** A record, or one with a field replaced by anything, dropped, or added. */
const candidates = <A>(schema: Schema.Schema<A, any>) =>
  fc.tuple(Arbitrary.make(schema), fc.nat(20), fc.anything(), fc.constantFrom("replace", "drop", "add", "keep")).map(
    ([value, at, other, how]) => {
      const record: Record<string, unknown> = { ...(value as Record<string, unknown>) }
      const keys = Object.keys(record)
      const key = keys.length === 0 ? "extra" : keys[at % keys.length] as string
      if (how === "replace") record[key] = other
      if (how === "drop") delete record[key]
      if (how === "add") record[`x${at}`] = other
      return record
    }
  )

describe("compileGuard: a fast check that passes only where decoding is the identity", () => {
  for (const [name, schema] of Object.entries(records)) {
    it(`${name}: every valid record passes; whatever passes decodes to itself`, () => {
      const guard = compileGuard(schema as Schema.Schema<unknown, any>)
      expect(guard).toBeDefined()
      const decode = Schema.decodeUnknownEither(schema as Schema.Schema<unknown, any>)
      fc.assert(fc.property(Arbitrary.make(schema as Schema.Schema<unknown, any>), (value) => {
        // JSON round trip: what storage gives back (no `undefined` fields).
        expect(guard?.(JSON.parse(JSON.stringify(value)))).toBe(true)
      }))
      fc.assert(fc.property(candidates(schema as Schema.Schema<unknown, any>), (value) => {
        if (guard?.(value) !== true) return
        const decoded = decode(value)
        expect(Either.isRight(decoded)).toBe(true)
        expect(Either.getOrThrow(decoded)).toStrictEqual(value)
      }), { numRuns: 500 })
    })
  }

  it("refuses what decoding refuses or changes: wrong types, refinements, extra properties", () => {
    const guard = compileGuard(AccessTokenRecord)
    const record = {
      grantId: "g",
      clientId: "c",
      subject: "s",
      scopes: ["read"],
      createdAt: 1,
      expiresAt: 2
    }
    expect(guard?.(record)).toBe(true)
    expect(guard?.({ ...record, grantId: 42 })).toBe(false)
    expect(guard?.({ ...record, createdAt: 1.5 })).toBe(false)
    expect(guard?.({ ...record, createdAt: -1 })).toBe(false)
    expect(guard?.({ ...record, scopes: ["read", 1] })).toBe(false)
    expect(guard?.({ ...record, extra: true })).toBe(false)
    expect(guard?.({ ...record, resource: undefined })).toBe(false)
    expect(guard?.(null)).toBe(false)
    expect(guard?.([record])).toBe(false)
  })

  it("compiles to undefined where the encoded form is not the type (a transformation)", () => {
    expect(compileGuard(IssuedPair)).toBeUndefined()
  })
})
