import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { Keys } from "../../src/internal/keys.ts"
import { Crypto } from "../../src/services/Crypto.ts"
import { ProviderTokenStore } from "../../src/services/ProviderTokenStore.ts"
import { RawStorage } from "../../src/services/RawStorage.ts"
import { TokenStore } from "../../src/services/TokenStore.ts"
import * as F from "./fixtures.ts"
import { advance, type Backend, everyMinute, concurrently, isAtomic, using } from "./harness.ts"

const SECOND = 1_000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

/** Whether the backend's raw contents mention a string. */
const holds = (needle: string) => Effect.map(Effect.flatMap(RawStorage, (raw) => raw.dump), (rows) => rows.some((row) => row.includes(needle)))

const tags = <T extends { readonly _tag: string }>(results: ReadonlyArray<T>) =>
  results.reduce<Record<string, number>>((counts, r) => ({ ...counts, [r._tag]: (counts[r._tag] ?? 0) + 1 }), {})

/** The `TokenStore` contract: every backend runs this with one line. */
export const tokenStoreContract = (backend: Backend) =>
  describe(`TokenStore contract: ${backend.name}`, () => {
    describe("expiry at the exact instant", () => {
      it.effect("transactions live 10 minutes", () =>
        using(backend)(Effect.gen(function*() {
          const store = yield* TokenStore
          yield* store.saveTransaction(F.transaction("tx-1"))
          yield* advance(10 * MINUTE - 1)
          expect(Option.isSome(yield* store.getTransaction("tx-1"))).toBe(true)
          yield* advance(1)
          expect(Option.isNone(yield* store.getTransaction("tx-1"))).toBe(true)
        })))

      it.effect("codes live 60 seconds by default", () =>
        using(backend)(Effect.gen(function*() {
          const store = yield* TokenStore
          yield* store.saveCode("code-a", F.code("g1"))
          yield* store.saveCode("code-b", F.code("g1"))
          yield* advance(60 * SECOND - 1)
          expect((yield* store.consumeCode("code-a"))._tag).toBe("Consumed")
          yield* advance(1)
          expect((yield* store.consumeCode("code-b"))._tag).toBe("NotFound")
        })))

      it.effect("the code TTL is configurable to seed 000's 10 minutes", () =>
        using(backend, { tokens: { codeTtl: "10 minutes" } })(Effect.gen(function*() {
          const store = yield* TokenStore
          yield* store.saveCode("code-a", F.code("g1"))
          yield* store.saveCode("code-b", F.code("g1"))
          yield* advance(10 * MINUTE - 1)
          expect((yield* store.consumeCode("code-a"))._tag).toBe("Consumed")
          yield* advance(1)
          expect((yield* store.consumeCode("code-b"))._tag).toBe("NotFound")
        })))

      it.effect("access-token records live 7 days", () =>
        using(backend)(Effect.gen(function*() {
          const store = yield* TokenStore
          const saved = yield* store.saveAccessToken("at-1", F.accessToken("g1"))
          expect(saved.expiresAt - saved.createdAt).toBe(7 * DAY)
          yield* advance(7 * DAY - 1)
          expect(Option.isSome(yield* store.getAccessToken("at-1"))).toBe(true)
          yield* advance(1)
          expect(Option.isNone(yield* store.getAccessToken("at-1"))).toBe(true)
        })))

      it.effect("a per-record ttl overrides the default", () =>
        using(backend)(Effect.gen(function*() {
          const store = yield* TokenStore
          yield* store.saveAccessToken("at-1", { ...F.accessToken("g1"), ttl: "1 hour" })
          yield* advance(HOUR - 1)
          expect(Option.isSome(yield* store.getAccessToken("at-1"))).toBe(true)
          yield* advance(1)
          expect(Option.isNone(yield* store.getAccessToken("at-1"))).toBe(true)
        })))

      it.effect("refresh tokens live 30 days, never past the chain's absolute end", () =>
        using(backend)(Effect.gen(function*() {
          const store = yield* TokenStore
          yield* store.saveGrant(F.grant("g1"))
          const first = yield* store.saveRefreshToken("rt-1", F.refreshToken("g1"))
          expect(first.expiresAt).toBe(30 * DAY)
          expect(first.absoluteExpiresAt).toBe(90 * DAY)
          const capped = yield* store.saveRefreshToken("rt-2", { ...F.refreshToken("g1"), absoluteExpiresAt: 2 * DAY })
          expect(capped.expiresAt).toBe(2 * DAY)
          yield* advance(30 * DAY - 1)
          expect(Option.isSome(yield* store.getRefreshToken("rt-1"))).toBe(true)
          expect(Option.isNone(yield* store.getRefreshToken("rt-2"))).toBe(true)
          yield* advance(1)
          expect(Option.isNone(yield* store.getRefreshToken("rt-1"))).toBe(true)
        })))

      it.effect("grants live 90 days", () =>
        using(backend)(Effect.gen(function*() {
          const store = yield* TokenStore
          yield* store.saveGrant(F.grant("g1"))
          yield* advance(90 * DAY - 1)
          expect(Option.isSome(yield* store.getGrant("g1"))).toBe(true)
          yield* advance(1)
          expect(Option.isNone(yield* store.getGrant("g1"))).toBe(true)
        })))

      it.effect("a successor never outlives the chain's absolute end", () =>
        using(backend, { tokens: { grantTtl: "40 days" } })(Effect.gen(function*() {
          const store = yield* TokenStore
          yield* store.saveGrant(F.grant("g1"))
          yield* store.saveRefreshToken("rt-0", F.refreshToken("g1"))
          yield* advance(20 * DAY)
          const rotation = yield* store.rotateRefreshToken("rt-0", F.pair(1))
          expect(rotation._tag).toBe("Rotated")
          if (rotation._tag === "Rotated") expect(rotation.current.expiresAt).toBe(40 * DAY)
        })))
    })

    it.effect("the sweep fiber removes expired records without any read", () =>
      using(backend, everyMinute)(Effect.gen(function*() {
        const store = yield* TokenStore
        const crypto = yield* Crypto
        yield* store.saveTransaction(F.transaction("tx-swept"))
        yield* store.saveCode("code-swept", F.code("g-swept"))
        yield* store.saveAccessToken("at-swept", { ...F.accessToken("g-swept"), ttl: "30 seconds" })
        const codeKey = Keys.code(yield* crypto.hash("code-swept"))
        const accessKey = Keys.accessToken(yield* crypto.hash("at-swept"))
        expect(yield* holds(codeKey)).toBe(true)
        expect(yield* holds(accessKey)).toBe(true)
        expect(yield* holds("tx-swept")).toBe(true)
        yield* advance(61 * SECOND)
        expect(yield* holds(codeKey)).toBe(false)
        expect(yield* holds(accessKey)).toBe(false)
        expect(yield* holds("tx-swept")).toBe(true)
        yield* advance(10 * MINUTE)
        expect(yield* holds("tx-swept")).toBe(false)
      })))

    describe("transactions", () => {
      it.effect("take returns the transaction once", () =>
        using(backend)(Effect.gen(function*() {
          const store = yield* TokenStore
          const saved = yield* store.saveTransaction(F.transaction("tx-1"))
          expect(saved.createdAt).toBe(0)
          expect(saved.expiresAt).toBe(10 * MINUTE)
          const taken = yield* store.takeTransaction("tx-1")
          expect(Option.getOrThrow(taken)).toEqual(saved)
          expect(Option.isNone(yield* store.takeTransaction("tx-1"))).toBe(true)
          expect(Option.isNone(yield* store.getTransaction("tx-1"))).toBe(true)
        })))

      it.effect.skipIf(!isAtomic(backend, "takeTransaction"))("100 concurrent takes: exactly one wins", () =>
        using(backend)(Effect.gen(function*() {
          const store = yield* TokenStore
          yield* store.saveTransaction(F.transaction("tx-race"))
          const results = yield* concurrently(100, () => store.takeTransaction("tx-race"))
          expect(results.filter(Option.isSome)).toHaveLength(1)
        })))
    })

    describe("authorization codes", () => {
      it.effect("a code is consumed once; a replay names its grant", () =>
        using(backend)(Effect.gen(function*() {
          const store = yield* TokenStore
          const saved = yield* store.saveCode("code-1", F.code("g1"))
          const first = yield* store.consumeCode("code-1")
          expect(first).toEqual({ _tag: "Consumed", code: saved })
          expect(yield* store.consumeCode("code-1")).toEqual({ _tag: "Replayed", grantId: "g1" })
          expect(yield* store.consumeCode("never-issued")).toEqual({ _tag: "NotFound" })
        })))

      it.effect.skipIf(!isAtomic(backend, "consumeCode"))("100 concurrent consumes: exactly one wins", () =>
        using(backend)(Effect.gen(function*() {
          const store = yield* TokenStore
          yield* store.saveCode("code-race", F.code("g1"))
          const results = yield* concurrently(100, () => store.consumeCode("code-race"))
          expect(tags(results)).toEqual({ Consumed: 1, Replayed: 99 })
        })))

      it.effect("code replay leads to revoking the grant: every code, token and provider token goes", () =>
        using(backend)(Effect.gen(function*() {
          const store = yield* TokenStore
          const providers = yield* ProviderTokenStore
          yield* store.saveGrant(F.grant("g1"))
          yield* store.saveGrant(F.grant("g2"))
          yield* store.saveCode("code-1", F.code("g1"))
          yield* store.saveCode("code-other", F.code("g1"))
          yield* store.saveAccessToken("at-1", F.accessToken("g1"))
          yield* store.saveRefreshToken("rt-1", F.refreshToken("g1"))
          yield* providers.storeTokens("g1", "github", F.providerTokens(1))
          yield* store.saveAccessToken("at-2", F.accessToken("g2"))
          yield* providers.storeTokens("g2", "github", F.providerTokens(2))

          yield* store.consumeCode("code-1")
          const replay = yield* store.consumeCode("code-1")
          expect(replay._tag).toBe("Replayed")
          if (replay._tag !== "Replayed") return
          expect(yield* store.revokeGrant(replay.grantId)).toBe(true)

          expect(Option.isNone(yield* store.getGrant("g1"))).toBe(true)
          expect((yield* store.consumeCode("code-other"))._tag).toBe("NotFound")
          expect(Option.isNone(yield* store.getAccessToken("at-1"))).toBe(true)
          expect(Option.isNone(yield* store.getRefreshToken("rt-1"))).toBe(true)
          expect(yield* providers.getProviderIds("g1")).toEqual([])
          // another grant is untouched
          expect(Option.isSome(yield* store.getGrant("g2"))).toBe(true)
          expect(Option.isSome(yield* store.getAccessToken("at-2"))).toBe(true)
          expect(yield* providers.getProviderIds("g2")).toEqual(["github"])
          expect(yield* store.revokeGrant("g1")).toBe(false)
        })))
    })

    describe("access-token records", () => {
      it.effect("are found by the token and revocable one by one", () =>
        using(backend)(Effect.gen(function*() {
          const store = yield* TokenStore
          const saved = yield* store.saveAccessToken("at-1", F.accessToken("g1"))
          expect(Option.getOrThrow(yield* store.getAccessToken("at-1"))).toEqual(saved)
          expect(Option.isNone(yield* store.getAccessToken("at-2"))).toBe(true)
          expect(yield* store.revokeAccessToken("at-1")).toBe(true)
          expect(yield* store.revokeAccessToken("at-1")).toBe(false)
          expect(Option.isNone(yield* store.getAccessToken("at-1"))).toBe(true)
        })))
    })

    describe("DPoP bindings (RFC 9449): the key thumbprint kept with the records", () => {
      const JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"

      it.effect("an opaque access token keeps its jkt; a bearer one has none", () =>
        using(backend)(Effect.gen(function*() {
          const store = yield* TokenStore
          const bound = yield* store.saveAccessToken("at-bound", { ...F.accessToken("g1"), jkt: JKT })
          expect(bound.jkt).toBe(JKT)
          expect(Option.getOrThrow(yield* store.getAccessToken("at-bound"))).toEqual(bound)
          yield* store.saveAccessToken("at-bearer", F.accessToken("g1"))
          expect(Option.getOrThrow(yield* store.getAccessToken("at-bearer")).jkt).toBeUndefined()
        })))

      it.effect("a bound refresh chain keeps its jkt through every rotation; the pair remembers its key for a retry", () =>
        using(backend)(Effect.gen(function*() {
          const store = yield* TokenStore
          yield* store.saveGrant(F.grant("g1"))
          const first = yield* store.saveRefreshToken("rt-0", { ...F.refreshToken("g1"), jkt: JKT })
          expect(first.jkt).toBe(JKT)
          expect(Option.getOrThrow(yield* store.getRefreshToken("rt-0")).jkt).toBe(JKT)
          const rotation = yield* store.rotateRefreshToken("rt-0", { ...F.pair(1), jkt: JKT })
          expect(rotation._tag === "Rotated" && [rotation.previous.jkt, rotation.current.jkt]).toEqual([JKT, JKT])
          expect(Option.getOrThrow(yield* store.getRefreshToken(Redacted.value(F.pair(1).refreshToken))).jkt).toBe(JKT)
          const replay = yield* store.rotateRefreshToken("rt-0", F.pair("retry"))
          expect(replay._tag === "GraceReplay" && [replay.pair.jkt, replay.current.jkt]).toEqual([JKT, JKT])
          const next = yield* store.rotateRefreshToken(Redacted.value(F.pair(1).refreshToken), F.pair(2))
          expect(next._tag === "Rotated" && next.current.jkt).toBe(JKT)
        })))

      it.effect("an unbound chain stays unbound", () =>
        using(backend)(Effect.gen(function*() {
          const store = yield* TokenStore
          yield* store.saveGrant(F.grant("g1"))
          yield* store.saveRefreshToken("rt-0", F.refreshToken("g1"))
          const rotation = yield* store.rotateRefreshToken("rt-0", F.pair(1))
          expect(rotation._tag === "Rotated" && "jkt" in rotation.current).toBe(false)
          const replay = yield* store.rotateRefreshToken("rt-0", F.pair("retry"))
          expect(replay._tag === "GraceReplay" && replay.pair.jkt).toBeUndefined()
        })))
    })

    describe("refresh-token rotation", () => {
      it.effect("rotation issues the next generation of the family", () =>
        using(backend)(Effect.gen(function*() {
          const store = yield* TokenStore
          yield* store.saveGrant(F.grant("g1"))
          const first = yield* store.saveRefreshToken("rt-0", F.refreshToken("g1"))
          expect(first).toMatchObject({ familyId: "g1", generation: 0 })
          yield* advance(HOUR)
          const rotation = yield* store.rotateRefreshToken("rt-0", F.pair(1))
          expect(rotation._tag).toBe("Rotated")
          if (rotation._tag !== "Rotated") return
          expect(rotation.previous).toMatchObject({ generation: 0, rotatedAt: HOUR })
          expect(rotation.current).toMatchObject({ familyId: "g1", generation: 1, createdAt: HOUR, expiresAt: HOUR + 30 * DAY })
          const successor = Option.getOrThrow(yield* store.getRefreshToken(Redacted.value(F.pair(1).refreshToken)))
          expect(successor).toEqual(rotation.current)
          const next = yield* store.rotateRefreshToken(Redacted.value(F.pair(1).refreshToken), F.pair(2))
          expect(next._tag === "Rotated" && next.current.generation).toBe(2)
        })))

      it.effect("the immediate predecessor replayed within the grace window gets the same pair", () =>
        using(backend)(Effect.gen(function*() {
          const store = yield* TokenStore
          yield* store.saveGrant(F.grant("g1"))
          yield* store.saveRefreshToken("rt-0", F.refreshToken("g1"))
          yield* store.rotateRefreshToken("rt-0", F.pair(1))
          yield* advance(30 * SECOND)
          const replay = yield* store.rotateRefreshToken("rt-0", F.pair("retry"))
          expect(replay._tag).toBe("GraceReplay")
          if (replay._tag !== "GraceReplay") return
          expect(Redacted.value(replay.pair.refreshToken)).toBe(Redacted.value(F.pair(1).refreshToken))
          expect(Redacted.value(replay.pair.accessToken)).toBe(Redacted.value(F.pair(1).accessToken))
          expect(replay.current.generation).toBe(1)
          expect(Option.isNone(yield* store.getRefreshToken(Redacted.value(F.pair("retry").refreshToken)))).toBe(true)
          expect(Option.isSome(yield* store.getGrant("g1"))).toBe(true)
        })))

      it.effect("reuse after the grace window revokes the grant", () =>
        using(backend)(Effect.gen(function*() {
          const store = yield* TokenStore
          const providers = yield* ProviderTokenStore
          yield* store.saveGrant(F.grant("g1"))
          yield* store.saveRefreshToken("rt-0", F.refreshToken("g1"))
          yield* store.saveAccessToken("at-1", F.accessToken("g1"))
          yield* providers.storeTokens("g1", "github", F.providerTokens(1))
          yield* store.rotateRefreshToken("rt-0", F.pair(1))
          yield* advance(30 * SECOND + 1)
          expect(yield* store.rotateRefreshToken("rt-0", F.pair(2))).toEqual({ _tag: "ReuseDetected", grantId: "g1" })
          expect(Option.isNone(yield* store.getGrant("g1"))).toBe(true)
          expect(Option.isNone(yield* store.getRefreshToken(Redacted.value(F.pair(1).refreshToken)))).toBe(true)
          expect(Option.isNone(yield* store.getAccessToken("at-1"))).toBe(true)
          expect(yield* providers.getProviderIds("g1")).toEqual([])
          expect((yield* store.rotateRefreshToken(Redacted.value(F.pair(1).refreshToken), F.pair(3)))._tag).toBe("NotFound")
        })))

      it.effect("reuse of an older generation, even within the window, revokes the grant", () =>
        using(backend)(Effect.gen(function*() {
          const store = yield* TokenStore
          yield* store.saveGrant(F.grant("g1"))
          yield* store.saveRefreshToken("rt-0", F.refreshToken("g1"))
          yield* store.rotateRefreshToken("rt-0", F.pair(1))
          yield* store.rotateRefreshToken(Redacted.value(F.pair(1).refreshToken), F.pair(2))
          expect((yield* store.rotateRefreshToken("rt-0", F.pair(3)))._tag).toBe("ReuseDetected")
          expect(Option.isNone(yield* store.getRefreshToken(Redacted.value(F.pair(2).refreshToken)))).toBe(true)
          expect(Option.isNone(yield* store.getGrant("g1"))).toBe(true)
        })))

      it.effect("an unknown or expired refresh token is not found", () =>
        using(backend)(Effect.gen(function*() {
          const store = yield* TokenStore
          expect((yield* store.rotateRefreshToken("nope", F.pair(1)))._tag).toBe("NotFound")
          yield* store.saveRefreshToken("rt-0", { ...F.refreshToken("g1"), ttl: "1 hour" })
          yield* advance(HOUR)
          expect((yield* store.rotateRefreshToken("rt-0", F.pair(1)))._tag).toBe("NotFound")
        })))

      it.effect.skipIf(!isAtomic(backend, "rotateRefreshToken"))(
        "100 concurrent rotations of one token: exactly one new family member",
        () =>
          using(backend)(Effect.gen(function*() {
            const store = yield* TokenStore
            yield* store.saveGrant(F.grant("g1"))
            yield* store.saveRefreshToken("rt-0", F.refreshToken("g1"))
            const results = yield* concurrently(100, (i) => store.rotateRefreshToken("rt-0", F.pair(i)))
            expect(tags(results)).toEqual({ Rotated: 1, GraceReplay: 99 })
            const winner = results.findIndex((r) => r._tag === "Rotated")
            for (const r of results) {
              if (r._tag === "GraceReplay") {
                expect(Redacted.value(r.pair.refreshToken)).toBe(Redacted.value(F.pair(winner).refreshToken))
              }
            }
            const live = yield* Effect.forEach(results, (_, i) => store.getRefreshToken(Redacted.value(F.pair(i).refreshToken)))
            const members = live.flatMap((o) => Option.isSome(o) ? [o.value] : [])
            expect(members).toHaveLength(1)
            expect(members[0]?.generation).toBe(1)
          }))
      )
    })

    it.effect("no raw bearer secret or provider token is held", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* TokenStore
        const providers = yield* ProviderTokenStore
        const crypto = yield* Crypto
        const secrets = {
          code: F.secret("code"),
          access: F.secret("access"),
          refresh: F.secret("refresh"),
          verifier: F.secret("upstream-pkce-verifier")
        }
        yield* store.saveGrant(F.grant("g1"))
        yield* store.saveTransaction({
          ...F.transaction("tx-1"),
          upstream: { state: "upstream-state", codeVerifier: Redacted.make(secrets.verifier) }
        })
        yield* store.saveCode(secrets.code, F.code("g1"))
        yield* store.saveAccessToken(secrets.access, F.accessToken("g1"))
        yield* store.saveRefreshToken(secrets.refresh, F.refreshToken("g1"))
        yield* store.rotateRefreshToken(secrets.refresh, F.pair("sealed"))
        yield* providers.storeTokens("g1", "github", F.providerTokens("raw"))
        const rows = yield* Effect.flatMap(RawStorage, (raw) => raw.dump)
        const all = rows.join("\n")
        expect(all).toContain(yield* crypto.hash(secrets.code))
        expect(all).toContain(yield* crypto.hash(secrets.refresh))
        for (
          const value of [
            ...Object.values(secrets),
            Redacted.value(F.pair("sealed").refreshToken),
            Redacted.value(F.pair("sealed").accessToken),
            "gho_provider_access_raw_secret",
            "ghr_provider_refresh_raw_secret",
            "user@example.com"
          ]
        ) expect(all).not.toContain(value)
      })))
  })
