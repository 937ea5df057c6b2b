/**
 * Two server processes on one Redis, as two instances behind a load balancer
 * (one PUBLIC_URL): a session initialized through one is used through the
 * other, and ended through the other.
 */
import { describe, expect, it } from "@effect/vitest"
import { randomBytes } from "node:crypto"
import { authorizeAndConnect, connectWith, headless, MemoryOAuthProvider } from "../support/mcpClient.ts"
import { freshPrefix, hasRedisServer, useRedis } from "../support/redis.ts"
import { startServer } from "../support/server.ts"

const redis = useRedis()

describe.skipIf(!hasRedisServer && process.env["REDIS_URL"] === undefined)("two server processes on one Redis", () => {
  it("serve each other's sessions", { timeout: 120_000 }, async () => {
    const shared = {
      STORE: "redis",
      REDIS_URL: redis.url(),
      REDIS_KEY_PREFIX: freshPrefix(),
      // Every instance must share the encryption key (the server refuses to start on Redis without it).
      RS_TOKENS_ENC_KEY: randomBytes(32).toString("base64url"),
      DEV_AUTO_APPROVE: "alice"
    }
    const one = await startServer({ env: shared })
    // Both instances are one server to the outside: the same issuer and resource (PUBLIC_URL).
    const other = await startServer({ env: { ...shared, PUBLIC_URL: one.url } })
    try {
      const provider = new MemoryOAuthProvider()
      const { client, transport } = await authorizeAndConnect(one.url, provider, headless)
      const sessionId = transport.sessionId
      expect(sessionId).toBeDefined()

      // The other instance: same bearer, same session id, no initialize.
      const elsewhere = await connectWith(other.url, provider, sessionId)
      const result = await elsewhere.client.callTool({ name: "whoami", arguments: {} })
      expect(result.structuredContent).toMatchObject({ subject: "alice", sessionId })

      // Ended on the other instance: gone on the first.
      await elsewhere.transport.terminateSession()
      await expect(client.callTool({ name: "whoami", arguments: {} })).rejects.toMatchObject({ code: 404 })
    } finally {
      await Promise.all([one.stop(), other.stop()])
    }
  })
})
