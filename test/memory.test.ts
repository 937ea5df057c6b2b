import { describe, expect, it } from "@effect/vitest"
import { Chunk, Context, Effect, Exit, Layer, Option, Scope, TestClock } from "effect"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import * as MemoryStore from "../src/layers/memory/index.ts"
import { RawStorage } from "../src/services/RawStorage.ts"
import { SessionStore } from "../src/services/SessionStore.ts"
import { TokenStore } from "../src/services/TokenStore.ts"
import { storeContract } from "./contract/index.ts"
import * as F from "./contract/fixtures.ts"
import { advance, using } from "./contract/harness.ts"

const memory = {
  name: "memory",
  make: (options?: MemoryStore.MemoryOptions) => MemoryStore.layer(options).pipe(Layer.provideMerge(NodeCrypto.layerEphemeral))
}

storeContract(memory)

describe("memory backend: seed 000 limits", () => {
  it.effect("at 1,000 pending transactions the least recently saved is evicted", () =>
    using(memory)(Effect.gen(function*() {
      const store = yield* TokenStore
      for (let i = 0; i <= 1_000; i++) yield* store.saveTransaction(F.transaction(`tx-${i}`))
      expect(Option.isNone(yield* store.getTransaction("tx-0"))).toBe(true)
      expect(Option.isSome(yield* store.getTransaction("tx-1"))).toBe(true)
      expect(Option.isSome(yield* store.getTransaction("tx-1000"))).toBe(true)
    })))

  it.effect("at 10,000 RS token records the least recently used is evicted, and leaves the grant index", () =>
    using(memory, { tokens: { maxTokenRecords: 100 } })(Effect.gen(function*() {
      const store = yield* TokenStore
      for (let i = 0; i < 100; i++) yield* store.saveAccessToken(`at-${i}`, F.accessToken(`g-${i}`))
      yield* store.getAccessToken("at-0") // used: now the most recent
      yield* store.saveAccessToken("at-100", F.accessToken("g-100"))
      expect(Option.isSome(yield* store.getAccessToken("at-0"))).toBe(true)
      expect(Option.isNone(yield* store.getAccessToken("at-1"))).toBe(true)
      expect(yield* store.revokeGrant("g-1")).toBe(false)
    })))

  it.effect("the default limit is 10,000 RS token records", () =>
    using(memory)(Effect.gen(function*() {
      const store = yield* TokenStore
      for (let i = 0; i <= 10_000; i++) yield* store.saveAccessToken(`at-${i}`, F.accessToken("g"))
      expect(Option.isNone(yield* store.getAccessToken("at-0"))).toBe(true)
      expect(Option.isSome(yield* store.getAccessToken("at-1"))).toBe(true)
    })))

  it.effect("the default global session limit is 10,000", () =>
    using(memory)(Effect.gen(function*() {
      const store = yield* SessionStore
      const first = yield* store.create({ apiKey: "key-0" })
      for (let i = 1; i < 10_000; i++) yield* store.create({ apiKey: `key-${i}` })
      const last = yield* store.create({ apiKey: "key-last" })
      expect(last.evicted.map((e) => e.session.id)).toEqual([first.session.id])
    })))

  it.effect("sweeps every 60 seconds by default, and stops when the layer is released", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(memory.make(), scope)
      const store = Context.get(context, TokenStore)
      const raw = Context.get(context, RawStorage)
      yield* store.saveAccessToken("at-1", { ...F.accessToken("g1"), ttl: "1 second" })
      yield* advance("59 seconds")
      expect((yield* raw.dump).length).toBe(1)
      yield* advance("1 second")
      expect((yield* raw.dump).length).toBe(0)
      yield* store.saveAccessToken("at-2", { ...F.accessToken("g1"), ttl: "1 second" })
      yield* Scope.close(scope, Exit.void)
      yield* advance("2 minutes")
      expect((yield* raw.dump).length).toBe(1)
      expect(Chunk.isEmpty(yield* TestClock.sleeps())).toBe(true)
    }))
})
