import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { ClientStore } from "../../src/services/ClientStore.ts"
import { RawStorage } from "../../src/services/RawStorage.ts"
import * as F from "./fixtures.ts"
import { advance, type Backend, using } from "./harness.ts"

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
  })
