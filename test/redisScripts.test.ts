import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Redis } from "ioredis"
import { connect } from "../src/layers/redis/client.ts"
import * as Lua from "../src/layers/redis/lua.ts"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import * as RedisStore from "../src/layers/redis/index.ts"
import { TokenStore } from "../src/services/TokenStore.ts"
import * as F from "./contract/fixtures.ts"
import { freshPrefix, useRedis } from "./support/redis.ts"

const server = useRedis()

describe("redis: Lua scripts (EVALSHA; EVAL when Redis does not hold one)", () => {
  it.live("a script cache flushed under a running layer (SCRIPT FLUSH) is loaded again on the next call, which runs once", () =>
    Effect.gen(function*() {
      const tokens = yield* TokenStore
      yield* tokens.saveCode("code-1", F.code("g1"))
      const admin = new Redis(server.url())
      yield* Effect.promise(() => admin.script("FLUSH"))
      yield* Effect.promise(() => admin.quit())
      // consumeCode is one script: after the flush its EVALSHA fails with NOSCRIPT, and the retry loads it.
      expect((yield* tokens.consumeCode("code-1"))._tag).toBe("Consumed")
      expect(yield* tokens.consumeCode("code-1")).toEqual({ _tag: "Replayed", grantId: "g1" })
      yield* tokens.saveCode("code-2", F.code("g1"))
      expect((yield* tokens.consumeCode("code-2"))._tag).toBe("Consumed")
    }).pipe(
      Effect.provide(
        RedisStore.layer({ url: server.url(), keyPrefix: freshPrefix() }).pipe(Layer.provideMerge(NodeCrypto.layerEphemeral))
      )
    ))

  it.scoped("a script not loaded at connect time runs beside commands issued in the same tick", () =>
    Effect.gen(function*() {
      const client = yield* connect({ url: server.url(), keyPrefix: freshPrefix() }, [])
      const echo = Lua.script("echoTwice", [], "return ARGV[2] .. ARGV[2]")
      // 50 rounds of: a plain command opens the tick's auto-pipeline, then the unlisted script joins it.
      const replies = yield* Effect.forEach(Array.from({ length: 50 }, (_, i) => i), (i) =>
        Effect.all([
          client.call("ping", (redis) => redis.ping()),
          client.run("echo", echo, [`x${i}`]),
          client.call("ping", (redis) => redis.ping())
        ], { concurrency: "unbounded" }), { concurrency: "unbounded" })
      expect(replies.map(([, echoed]) => echoed)).toEqual(Array.from({ length: 50 }, (_, i) => `x${i}x${i}`))
    }))
})
