import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { Miniflare } from "miniflare"
import * as WebCrypto from "../src/layers/crypto/web.ts"
import { Keys } from "../src/internal/keys.ts"
import * as KvStore from "../src/layers/kv/index.ts"
import type { KvBinding } from "../src/layers/kv/namespace.ts"
import { Crypto } from "../src/services/Crypto.ts"
import { TokenStore } from "../src/services/TokenStore.ts"
import * as F from "./contract/fixtures.ts"
import { startMiniflare } from "./fixtures/kvBindings.ts"

/**
 * The one real-time test: KV's own TTL really is set. Miniflare's KV expires
 * keys by the wall clock only, so this waits past KV's 60-second minimum. All
 * other TTL logic is tested with `TestClock` in `kv.test.ts`.
 */
let mf: Miniflare
let namespace: KvBinding

beforeAll(async () => {
  mf = startMiniflare()
  namespace = await mf.getKVNamespace("TOKENS")
})

afterAll(async () => {
  await mf.dispose()
})

const keyPrefix = "ttl:"

describe("kv: KV's own expiry", () => {
  it.live("a record written with the minimum TTL is gone from KV itself after 60 s of real time", () =>
    Effect.gen(function*() {
      const store = yield* TokenStore
      const crypto = yield* Crypto
      yield* store.saveCode("short-code", F.code("g1")) // 60 s
      yield* store.saveAccessToken("short-token", { ...F.accessToken("g1"), ttl: "5 seconds" }) // clamped to 60 s
      yield* store.saveTransaction(F.transaction("control")) // 10 minutes: must still be there
      const keys = [
        keyPrefix + Keys.code(yield* crypto.hash("short-code")),
        keyPrefix + Keys.accessToken(yield* crypto.hash("short-token"))
      ]
      const raw = (key: string) => Effect.promise(() => namespace.getWithMetadata(key)).pipe(Effect.map((r) => r.value))
      for (const key of keys) expect(yield* raw(key)).not.toBeNull()

      yield* Effect.sleep("62 seconds")

      // Read from the namespace directly, not through the store: no expiry check of ours is involved,
      // and the layer runs no KV sweep (`sweepKv: false`).
      for (const key of keys) expect(yield* raw(key)).toBeNull()
      expect(yield* raw(keyPrefix + Keys.transaction("control"))).not.toBeNull()
      const listed = yield* Effect.promise(() => namespace.list({ prefix: keyPrefix }))
      expect(listed.keys.map((k) => k.name).filter((name) => keys.includes(name))).toEqual([])
    }).pipe(
      Effect.provide(Layer.suspend(() =>
        KvStore.layer({ namespace, keyPrefix, sweepKv: false }).pipe(Layer.provideMerge(WebCrypto.layerEphemeral))
      ))
    ), 120_000)
})
