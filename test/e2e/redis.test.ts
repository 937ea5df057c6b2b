/**
 * Server processes on one Redis, as instances behind a load balancer (one
 * PUBLIC_URL): a session initialized through one is used and ended through
 * the other; one code redeemed concurrently through both is honoured once
 * (and the replays revoke its grant); one refresh token rotated concurrently
 * through both gives every caller the same new pair. And a Redis that stops answering:
 * 503 `temporarily_unavailable` with `Retry-After`, then service again.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { randomBytes } from "node:crypto"
import { authorizeAndConnect, connectWith, headless, MemoryOAuthProvider } from "../support/mcpClient.ts"
import {
  authorizeHeadless,
  callToolRequest,
  exchangeCodeRequest,
  initializeSession,
  issueTokens,
  refreshRequest,
  registerPublicClient,
  send,
  tokensOf
} from "../support/oauthFlow.ts"
import { acquireRedisServer, freshPrefix, hasRedisServer, type RedisServer } from "../support/redis.ts"
import { type ServerProcess, startServer } from "../support/server.ts"

/** A Redis of this file's own (the outage test freezes it). */
let redis: RedisServer
let scope: Scope.CloseableScope
let one: ServerProcess
let other: ServerProcess

const instanceEnv = () => ({
  STORE: "redis",
  REDIS_URL: redis.url,
  REDIS_KEY_PREFIX: freshPrefix(),
  // Every instance must share the encryption key (the server refuses to start on Redis without it).
  RS_TOKENS_ENC_KEY: randomBytes(32).toString("base64url"),
  DEV_AUTO_APPROVE: "alice"
})

const errorOf = (body: string): unknown => (JSON.parse(body) as { error?: unknown }).error

describe.skipIf(!hasRedisServer)("server processes on one Redis", () => {
  beforeAll(async () => {
    scope = Effect.runSync(Scope.make())
    redis = await Effect.runPromise(Scope.extend(acquireRedisServer, scope))
    const shared = instanceEnv()
    one = await startServer({ env: shared })
    // Both instances are one server to the outside: the same issuer and resource (PUBLIC_URL).
    other = await startServer({ env: { ...shared, PUBLIC_URL: one.url } })
  }, 90_000)
  afterAll(async () => {
    await Promise.all([one?.stop(), other?.stop()])
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })

  /** Spread requests over both instances (each request goes to one of them, alternating). */
  const instance = (i: number) => `http://127.0.0.1:${(i % 2 === 0 ? one : other).port}`

  it("serve each other's sessions", { timeout: 60_000 }, async () => {
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
  })

  it("issue at most once for a code redeemed concurrently through both, and let the replays revoke the grant", { timeout: 60_000 }, async () => {
    const clientId = await registerPublicClient(one.url)
    const { code, verifier } = await authorizeHeadless(one.url, clientId)
    const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => exchangeCodeRequest(instance(i), clientId, code, verifier)))
    // One consumption wins; the other eleven are replays, and a replay revokes the grant (RFC 6749 §4.1.2),
    // so even the winner's answer may already be invalid_grant: the engine re-checks the grant before answering.
    const won = replies.filter((r) => r.status === 200)
    expect(won.length).toBeLessThanOrEqual(1)
    for (const lost of replies.filter((r) => r.status !== 200)) {
      expect(lost.status).toBe(400)
      expect(errorOf(lost.body)).toBe("invalid_grant")
    }
    const replayed = [...one.lines(), ...other.lines()].filter((l) => l.includes("authorization code replayed"))
    expect(replayed.length).toBeGreaterThanOrEqual(1)
    for (const reply of won) {
      // Whatever was issued does not survive the revocation, on either instance.
      const tokens = tokensOf(reply)
      for (const base of [one.url, instance(1)]) {
        const refused = await send(`${base}/mcp`, {
          method: "POST",
          headers: { authorization: `Bearer ${tokens.access_token}`, "content-type": "application/json", accept: "application/json" },
          body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" })
        })
        expect(refused.status).toBe(401)
      }
      expect((await refreshRequest(instance(1), clientId, tokens.refresh_token)).status).toBe(400)
    }
  })

  it("give every concurrent refresh of one token, through both, the same new pair", { timeout: 60_000 }, async () => {
    const { clientId, tokens } = await issueTokens(one.url)
    const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => refreshRequest(instance(i), clientId, tokens.refresh_token)))
    for (const reply of replies) expect(reply.status).toBe(200)
    const pairs = new Set(replies.map((r) => {
      const t = tokensOf(r)
      return `${t.access_token} ${t.refresh_token}`
    }))
    expect(pairs.size).toBe(1)
    const next = tokensOf(replies[0]!)
    expect(next.refresh_token).not.toBe(tokens.refresh_token)
    // The chain goes on from the one successor.
    expect((await refreshRequest(instance(1), clientId, next.refresh_token)).status).toBe(200)
  })

  it("answer a Redis that stops answering with 503 temporarily_unavailable, then serve again", { timeout: 90_000 }, async () => {
    const { clientId, tokens } = await issueTokens(one.url)
    const sessionId = await initializeSession(one.url, tokens.access_token)
    expect((await callToolRequest(other.url, tokens.access_token, sessionId, "whoami")).status).toBe(200)

    // Frozen (SIGSTOP): connections stay open and nothing answers, so each command times out (2 s).
    await Effect.runPromise(redis.freeze)
    try {
      for (const reply of [
        await callToolRequest(one.url, tokens.access_token, sessionId, "whoami"),
        await refreshRequest(other.url, clientId, tokens.refresh_token),
        await send(`${one.url}/register`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ redirect_uris: ["http://127.0.0.1:9/cb"] }) })
      ]) {
        expect(reply.status).toBe(503)
        expect(reply.headers.get("retry-after")).toBe("5")
        expect(errorOf(reply.body)).toBe("temporarily_unavailable")
      }
    } finally {
      await Effect.runPromise(redis.thaw)
    }
    // Nothing was lost: the same session and refresh token work again on both instances. (A refresh sent
    // during the outage may have been applied once Redis ran again: then this one is its grace replay.)
    let back = await callToolRequest(other.url, tokens.access_token, sessionId, "whoami")
    for (let attempt = 0; back.status !== 200 && attempt < 20; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 500))
      back = await callToolRequest(other.url, tokens.access_token, sessionId, "whoami")
    }
    expect(back.status).toBe(200)
    expect((await refreshRequest(one.url, clientId, tokens.refresh_token)).status).toBe(200)
    expect(one.lines().concat(other.lines()).some((l) => l.includes(tokens.access_token) || l.includes(tokens.refresh_token))).toBe(false)
  })
})
