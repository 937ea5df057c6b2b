/**
 * Redis for test files: a real `redis-server` (see `./redisServer.ts`)
 * started before a file's tests and stopped after them, or the server
 * `REDIS_URL` points at. Tests that stop and restart the server always start
 * their own with `acquireRedisServer`.
 */
import { afterAll, beforeAll } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { acquireRedisServer } from "./redisServer.ts"

export * from "./redisServer.ts"

/**
 * For a test file: the URL of the Redis the contract tests use, `REDIS_URL`
 * or a server started before the file's tests and stopped after them.
 */
export const useRedis = (): { readonly url: () => string; readonly external: boolean } => {
  const external = process.env["REDIS_URL"]
  let url: string | undefined = external
  let scope: Scope.CloseableScope | undefined
  beforeAll(async () => {
    if (external !== undefined) return
    scope = Effect.runSync(Scope.make())
    url = (await Effect.runPromise(Scope.extend(acquireRedisServer, scope))).url
  })
  afterAll(async () => {
    if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void))
  })
  return {
    url: () => {
      if (url === undefined) throw new Error("the Redis server has not started")
      return url
    },
    external: external !== undefined
  }
}

