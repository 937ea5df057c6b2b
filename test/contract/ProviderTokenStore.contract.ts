import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { ProviderTokenStore } from "../../src/services/ProviderTokenStore.ts"
import { RawStorage } from "../../src/services/RawStorage.ts"
import * as F from "./fixtures.ts"
import { advance, type Backend, everyMinute, using } from "./harness.ts"

const HOUR = 3_600_000
const DAY = 24 * HOUR

const reveal = (tokens: Option.Option<F.ProviderTokensValue>) =>
  Option.map(tokens, (t) => ({
    accessToken: Redacted.value(t.accessToken),
    refreshToken: t.refreshToken === undefined ? undefined : Redacted.value(t.refreshToken)
  }))

/** The `ProviderTokenStore` contract (seed 002's `OrchestratedTokenStore`). */
export const providerTokenStoreContract = (backend: Backend) =>
  describe(`ProviderTokenStore contract: ${backend.name}`, () => {
    it.effect("stores, reads and deletes tokens per (authorization, provider)", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* ProviderTokenStore
        const tokens = F.providerTokens(1, { accessExpiresAt: HOUR, refreshExpiresAt: 10 * DAY })
        yield* store.storeTokens("auth-1", "github", tokens)
        yield* store.storeTokens("auth-1", "google", F.providerTokens(2))
        const read = Option.getOrThrow(yield* store.getTokens("auth-1", "github"))
        expect(Redacted.value(read.accessToken)).toBe("gho_provider_access_1_secret")
        expect({ ...read, accessToken: null, refreshToken: null }).toEqual({ ...tokens, accessToken: null, refreshToken: null })
        expect(Option.isNone(yield* store.getTokens("auth-2", "github"))).toBe(true)
        expect([...(yield* store.getProviderIds("auth-1"))].sort()).toEqual(["github", "google"])
        expect(yield* store.deleteTokens("auth-1", "github")).toBe(true)
        expect(yield* store.deleteTokens("auth-1", "github")).toBe(false)
        expect(yield* store.getProviderIds("auth-1")).toEqual(["google"])
        yield* store.deleteAll("auth-1")
        expect(yield* store.getProviderIds("auth-1")).toEqual([])
      })))

    it.effect("migrateTokens moves every provider from the pending id to the grant", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* ProviderTokenStore
        yield* store.storeTokens("pending:abc123", "github", F.providerTokens(1))
        yield* store.storeTokens("pending:abc123", "google", F.providerTokens(2))
        yield* store.migrateTokens("pending:abc123", "user:real-auth-id")
        expect(yield* store.getProviderIds("pending:abc123")).toEqual([])
        expect([...(yield* store.getProviderIds("user:real-auth-id"))].sort()).toEqual(["github", "google"])
        expect(reveal(yield* store.getTokens("user:real-auth-id", "google"))).toEqual(Option.some({
          accessToken: "gho_provider_access_2_secret",
          refreshToken: "ghr_provider_refresh_2_secret"
        }))
        yield* store.migrateTokens("nothing-here", "user:real-auth-id")
        expect((yield* store.getProviderIds("user:real-auth-id")).length).toBe(2)
      })))

    it.effect("an upstream refresh without a refresh token keeps the old one", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* ProviderTokenStore
        yield* store.storeTokens("g1", "github", F.providerTokens(1, { refreshExpiresAt: 20 * DAY }))
        const { refreshToken: _dropped, refreshExpiresAt: _also, ...withoutRefresh } = F.providerTokens(2)
        yield* store.storeTokens("g1", "github", withoutRefresh)
        const read = Option.getOrThrow(yield* store.getTokens("g1", "github"))
        expect(Redacted.value(read.accessToken)).toBe("gho_provider_access_2_secret")
        expect(read.refreshToken && Redacted.value(read.refreshToken)).toBe("ghr_provider_refresh_1_secret")
        expect(read.refreshExpiresAt).toBe(20 * DAY)
      })))

    it.effect("a record lives as long as its refresh token, past its access token's expiry", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* ProviderTokenStore
        yield* store.storeTokens("g1", "github", F.providerTokens(1, { accessExpiresAt: HOUR, refreshExpiresAt: 2 * DAY }))
        yield* advance(2 * DAY - 1)
        expect(Option.isSome(yield* store.getTokens("g1", "github"))).toBe(true)
        yield* advance(1)
        expect(Option.isNone(yield* store.getTokens("g1", "github"))).toBe(true)
      })))

    it.effect("without a refresh token, a record lives until its access token expires", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* ProviderTokenStore
        const { refreshToken: _r, ...accessOnly } = F.providerTokens(1, { accessExpiresAt: HOUR })
        yield* store.storeTokens("g1", "github", accessOnly)
        yield* advance(HOUR - 1)
        expect(Option.isSome(yield* store.getTokens("g1", "github"))).toBe(true)
        yield* advance(1)
        expect(Option.isNone(yield* store.getTokens("g1", "github"))).toBe(true)
        expect(yield* store.getProviderIds("g1")).toEqual([])
      })))

    it.effect("with no expiry from the provider, a record lives the default 30 days", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* ProviderTokenStore
        yield* store.storeTokens("g1", "github", F.providerTokens(1))
        yield* advance(30 * DAY - 1)
        expect(Option.isSome(yield* store.getTokens("g1", "github"))).toBe(true)
        yield* advance(1)
        expect(Option.isNone(yield* store.getTokens("g1", "github"))).toBe(true)
      })))

    it.effect("the sweep removes expired provider tokens without any read", () =>
      using(backend, everyMinute)(Effect.gen(function*() {
        const store = yield* ProviderTokenStore
        const raw = yield* RawStorage
        const { refreshToken: _r, ...accessOnly } = F.providerTokens(1, { accessExpiresAt: HOUR })
        yield* store.storeTokens("g-sweep", "github", accessOnly)
        expect((yield* raw.dump).some((row) => row.includes("g-sweep"))).toBe(true)
        yield* advance(HOUR + 61_000)
        expect((yield* raw.dump).some((row) => row.includes("g-sweep"))).toBe(false)
      })))

    it.effect("provider tokens are encrypted at rest", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* ProviderTokenStore
        yield* store.storeTokens("g1", "github", F.providerTokens("at-rest"))
        yield* store.storeTokens("pending-x", "google", F.providerTokens("migrated"))
        yield* store.migrateTokens("pending-x", "g1")
        const all = (yield* Effect.flatMap(RawStorage, (raw) => raw.dump)).join("\n")
        expect(all).toContain("github")
        for (const needle of ["gho_provider_access_at-rest", "ghr_provider_refresh_at-rest", "gho_provider_access_migrated", "user@example.com"]) {
          expect(all).not.toContain(needle)
        }
      })))
  })
