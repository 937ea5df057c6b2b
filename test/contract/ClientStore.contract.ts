import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { ClientStore } from "../../src/services/ClientStore.ts"
import { RawStorage } from "../../src/services/RawStorage.ts"
import * as F from "./fixtures.ts"
import { advance, type Backend, everyMinute, using } from "./harness.ts"

/** The `ClientStore` contract (RFC 7591 registrations). */
export const clientStoreContract = (backend: Backend) =>
  describe(`ClientStore contract: ${backend.name}`, () => {
    it.effect("registers, reads and deletes clients", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* ClientStore
        yield* advance(5_500)
        const client = yield* store.register({ clientId: "c1", metadata: F.clientMetadata })
        expect(client).toEqual({ clientId: "c1", clientIdIssuedAt: 5, clientSecretExpiresAt: 0, metadata: F.clientMetadata })
        expect(Option.getOrThrow(yield* store.get("c1"))).toEqual(client)
        expect(Option.isNone(yield* store.get("c2"))).toBe(true)
        expect(yield* store.delete("c1")).toBe(true)
        expect(yield* store.delete("c1")).toBe(false)
        expect(Option.isNone(yield* store.get("c1"))).toBe(true)
      })))

    it.effect("authenticates with the secret, which is held only as a hash", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* ClientStore
        const clientSecret = F.secret("client-secret")
        yield* store.register({ clientId: "c1", clientSecret, metadata: F.clientMetadata })
        yield* store.register({ clientId: "public", metadata: { ...F.clientMetadata, token_endpoint_auth_method: "none" } })
        expect(Option.isSome(yield* store.authenticate("c1", clientSecret))).toBe(true)
        expect(Option.isNone(yield* store.authenticate("c1", `${clientSecret}x`))).toBe(true)
        expect(Option.isNone(yield* store.authenticate("c2", clientSecret))).toBe(true)
        expect(Option.isNone(yield* store.authenticate("public", ""))).toBe(true)
        const all = (yield* Effect.flatMap(RawStorage, (raw) => raw.dump)).join("\n")
        expect(all).toContain("c1")
        expect(all).not.toContain(clientSecret)
      })))

    it.effect("an expired client secret no longer authenticates", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* ClientStore
        yield* store.register({ clientId: "c1", clientSecret: "s", clientSecretExpiresAt: 100, metadata: F.clientMetadata })
        yield* advance(99_999)
        expect(Option.isSome(yield* store.authenticate("c1", "s"))).toBe(true)
        yield* advance(1)
        expect(Option.isNone(yield* store.authenticate("c1", "s"))).toBe(true)
      })))

    it.effect("a client stored with a ttl (a cached metadata document) is served until then only; the sweep removes it", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* ClientStore
        const url = "https://app.example/client.json"
        yield* advance(1_000)
        const cached = yield* store.register({ clientId: url, metadata: F.clientMetadata, ttl: "10 minutes" })
        expect(cached.expiresAt).toBe(1_000 + 600_000)
        yield* store.register({ clientId: "registered", metadata: F.clientMetadata })
        yield* advance(599_999)
        expect(Option.getOrThrow(yield* store.get(url))).toEqual(cached)
        yield* advance(1)
        expect(Option.isNone(yield* store.get(url))).toBe(true)
        expect(Option.isSome(yield* store.get("registered"))).toBe(true)

        // Fetched again: the new record replaces the old, with its own expiry.
        const renewed = yield* store.register({
          clientId: url,
          metadata: { ...F.clientMetadata, client_name: "renewed" },
          ttl: "1 hour"
        })
        expect(Option.getOrThrow(yield* store.get(url)).metadata.client_name).toBe("renewed")
        expect(renewed.expiresAt).toBe(601_000 + 3_600_000)
        yield* advance("1 hour")
        expect(Option.isNone(yield* store.get(url))).toBe(true)
        expect(Option.isSome(yield* store.get("registered"))).toBe(true)
      })))

    it.effect("an expired confidential client no longer authenticates", () =>
      using(backend)(Effect.gen(function*() {
        const store = yield* ClientStore
        yield* store.register({ clientId: "c1", clientSecret: "s", metadata: F.clientMetadata, ttl: "1 minute" })
        expect(Option.isSome(yield* store.authenticate("c1", "s"))).toBe(true)
        yield* advance("1 minute")
        expect(Option.isNone(yield* store.authenticate("c1", "s"))).toBe(true)
      })))

    it.effect("the sweep deletes expired clients and keeps registered ones", () =>
      using(backend, everyMinute)(Effect.gen(function*() {
        const store = yield* ClientStore
        yield* store.register({ clientId: "https://app.example/a.json", metadata: F.clientMetadata, ttl: "2 minutes" })
        yield* store.register({ clientId: "registered", metadata: F.clientMetadata })
        const raw = () => Effect.flatMap(RawStorage, (r) => r.dump).pipe(Effect.map((lines) => lines.join("\n")))
        expect(yield* raw()).toContain("a.json")
        yield* advance("3 minutes")
        yield* advance("1 minute")
        expect(yield* raw()).not.toContain("a.json")
        expect(yield* raw()).toContain("registered")
      })))
  })
