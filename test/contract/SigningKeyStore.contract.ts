import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option, Redacted } from "effect"
import type { SigningKeySet } from "../../src/schema/signingKey.ts"
import { RawStorage } from "../../src/services/RawStorage.ts"
import { SigningKeyStore } from "../../src/services/SigningKeyStore.ts"
import { type Backend, concurrently, isAtomic, using } from "./harness.ts"
import * as F from "./fixtures.ts"

const revealD = (set: Option.Option<SigningKeySet>) =>
  Option.map(set, (s) => s.keys.map((k) => Redacted.value(k.privateJwk)["d"]))

/** The `SigningKeyStore` contract: one sealed key set, replaced by compare-and-set. */
export const signingKeyStoreContract = (backend: Backend) =>
  describe(`SigningKeyStore contract: ${backend.name}`, () => {
    it.effect("compare-and-set on the version", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* SigningKeyStore
        expect(Option.isNone(yield* store.get)).toBe(true)
        expect(yield* store.compareAndSet(undefined, F.keySet(1, "a"))).toBe(true)
        expect(yield* store.compareAndSet(undefined, F.keySet(1, "b"))).toBe(false)
        expect(revealD(yield* store.get)).toEqual(Option.some(["private-d-a-secret"]))
        expect(yield* store.compareAndSet(1, F.keySet(2, "c"))).toBe(true)
        expect(yield* store.compareAndSet(1, F.keySet(2, "d"))).toBe(false)
        const stored = Option.getOrThrow(yield* store.get)
        expect(stored.version).toBe(2)
        expect(stored.keys[0]?.publicJwk).toEqual(F.keySet(2, "c").keys[0]?.publicJwk)
      })))

    it.effect("a write that does not move the version on by one is refused", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* SigningKeyStore
        const exit = yield* Effect.exit(store.compareAndSet(undefined, F.keySet(3, "a")))
        expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain("Invalid")
      })))

    it.effect.skipIf(!isAtomic(backend, "signingKeyCas"))("50 concurrent writers of the next version: exactly one wins", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* SigningKeyStore
        yield* store.compareAndSet(undefined, F.keySet(1, "base"))
        const results = yield* concurrently(50, (i) => store.compareAndSet(1, F.keySet(2, `w${i}`)))
        expect(results.filter((won) => won)).toHaveLength(1)
        const winner = results.indexOf(true)
        expect(revealD(yield* store.get)).toEqual(Option.some([`private-d-w${winner}-secret`]))
      })))

    it.effect("private keys are sealed at rest", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* SigningKeyStore
        yield* store.compareAndSet(undefined, F.keySet(1, "rest"))
        const all = (yield* Effect.flatMap(RawStorage, (raw) => raw.dump)).join("\n")
        expect(all.length).toBeGreaterThan(0)
        expect(all).not.toContain("private-d-rest-secret")
      })))
  })
