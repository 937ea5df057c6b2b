import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Effect, Either, FastCheck as fc, Redacted, Schema } from "effect"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import { issuedPairJson, open, sealIssuedPair } from "../src/internal/sealed.ts"
import { IssuedPair } from "../src/schema/token.ts"
import { Crypto } from "../src/services/Crypto.ts"
import { StoreError } from "../src/services/StoreError.ts"

const encodeJson = Schema.encodeEither(Schema.parseJson(IssuedPair))

/** A pair, or one with a field replaced by anything (a plain string where a Redacted belongs, ...), dropped, or added. */
const candidates = fc.tuple(
  Arbitrary.make(IssuedPair),
  fc.constantFrom("refreshToken", "accessToken", "jkt", "extra"),
  fc.oneof(fc.anything(), fc.string().map(Redacted.make), fc.integer().map((n) => Redacted.make(n))),
  fc.constantFrom("replace", "drop", "keep")
).map(([pair, key, other, how]) => {
  const record: Record<string, unknown> = { ...pair }
  if (how === "replace") record[key] = other
  if (how === "drop") delete record[key]
  return record as unknown as IssuedPair
})

describe("sealing an IssuedPair", () => {
  it("issuedPairJson is the Schema's JSON whenever it answers, and answers for every well-formed pair", () => {
    fc.assert(fc.property(candidates, (pair) => {
      const fast = issuedPairJson(pair)
      const slow = encodeJson(pair)
      if (fast !== undefined) expect(Either.getOrUndefined(slow)).toBe(fast)
      if (Either.isRight(slow) && Redacted.isRedacted(pair.refreshToken) && Redacted.isRedacted(pair.accessToken)) {
        expect(fast).toBe(slow.right)
      }
    }), { numRuns: 2_000 })
    fc.assert(fc.property(Arbitrary.make(IssuedPair), (pair) => {
      expect(issuedPairJson(pair)).toBe(Either.getOrThrow(encodeJson(pair)))
    }), { numRuns: 1_000 })
  })

  it.effect("sealIssuedPair opens to the same pair; a malformed one is StoreError Invalid", () =>
    Effect.gen(function*() {
      const crypto = yield* Crypto
      const pair: IssuedPair = { refreshToken: Redacted.make("rt-1"), accessToken: Redacted.make("at-1"), jkt: "thumb" }
      const envelope = yield* sealIssuedPair(crypto, pair, "refresh-successor:h", "test")
      const opened = yield* open(crypto, IssuedPair, envelope, "refresh-successor:h", "test")
      expect(Redacted.value(opened.refreshToken)).toBe("rt-1")
      expect(Redacted.value(opened.accessToken)).toBe("at-1")
      expect(opened.jkt).toBe("thumb")
      const malformed = { refreshToken: "not redacted", accessToken: Redacted.make("at-1") } as unknown as IssuedPair
      const error = yield* Effect.flip(sealIssuedPair(crypto, malformed, "refresh-successor:h", "test"))
      expect(error).toBeInstanceOf(StoreError)
      expect(error.reason).toBe("Invalid")
    }).pipe(Effect.provide(NodeCrypto.layerEphemeral)))
})
