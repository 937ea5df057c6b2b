/**
 * Server processes on one Redis, as instances behind a load balancer (one
 * PUBLIC_URL): a session initialized through one is used and ended through
 * the other; one code redeemed concurrently through both is honoured once
 * (and the replays revoke its grant); one refresh token rotated concurrently
 * through both gives every caller the same new pair. A 2026-07-28 listen
 * stream on one hears a tool list change announced on the other, and resumes
 * on the other with `Last-Event-ID`. Wrong API keys on the consent page are
 * counted across both (the lockout answers 429 on either). A DPoP proof used
 * on one instance is refused as a replay on the other (the ReplayCache is
 * Redis's), and a DPoP refresh token without its key is refused on both. And
 * a Redis that stops answering:
 * 503 `temporarily_unavailable` with `Retry-After`, then service again.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { randomBytes } from "node:crypto"
import { authorizeAndConnect, connectWith, headless, MemoryOAuthProvider } from "../support/mcpClient.ts"
import { ath, dpopKey, signProof } from "../support/dpop.ts"
import {
  authorizeHeadless,
  callToolRequest,
  exchangeCodeRequest,
  initializeSession,
  issueTokens,
  PROTOCOL_VERSION,
  REDIRECT_URI,
  refreshRequest,
  registerPublicClient,
  send,
  tokensOf
} from "../support/oauthFlow.ts"
import { authorizeAndConnect2, MemoryOAuthProvider2 } from "../support/mcpClient2026.ts"
import { openConsent, submitConsent } from "../http/consentBrowser.ts"
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
    const elsewhere = await connectWith(`http://127.0.0.1:${other.port}`, provider, sessionId)
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

  it("refuse a DPoP proof replayed on the other instance, and a stolen DPoP refresh token on either", { timeout: 60_000 }, async () => {
    const key = await dpopKey()
    const clientId = await registerPublicClient(one.url)
    const { code, verifier } = await authorizeHeadless(one.url, clientId)
    // The token endpoint as the metadata publishes it (the public URL: instance `one`).
    const tokenProof = () => signProof(key, { htm: "POST", htu: `${one.url}/token`, iat: Math.floor(Date.now() / 1000) })
    const form = (params: Record<string, string>, proof?: string): RequestInit => ({
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...(proof === undefined ? {} : { dpop: proof }) },
      body: new URLSearchParams(params).toString()
    })
    const issued = tokensOf(await send(`${one.url}/token`, form(
      { grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, code_verifier: verifier, client_id: clientId },
      await tokenProof()
    )))
    // /mcp on each instance at its own address: the proof names the URL the client used.
    const initialize = (base: string, proof: string) =>
      send(`${base}/mcp`, {
        method: "POST",
        headers: { authorization: `DPoP ${issued.access_token}`, dpop: proof, "content-type": "application/json", accept: "application/json, text/event-stream" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "dpop", version: "0" } } })
      })
    const otherUrl = `http://127.0.0.1:${other.port}`
    const mcpProof = (htu: string) =>
      signProof(key, { htm: "POST", htu, iat: Math.floor(Date.now() / 1000), ath: ath(issued.access_token) })
    // A proof for the public /mcp URL is accepted by either instance, once.
    expect((await initialize(otherUrl, await mcpProof(`${one.url}/mcp`))).status).toBe(200)
    const proof = await mcpProof(`${one.url}/mcp`)
    expect((await initialize(one.url, proof)).status).toBe(200)
    const replayed = await initialize(otherUrl, proof)
    expect(replayed.status).toBe(401)
    expect(errorOf(replayed.body)).toBe("invalid_dpop_proof")
    // A proof naming an instance's own address works there, and is not accepted twice either.
    const direct = await mcpProof(`${otherUrl}/mcp`)
    expect((await initialize(otherUrl, direct)).status).toBe(200)
    expect(errorOf((await initialize(otherUrl, direct)).body)).toBe("invalid_dpop_proof")

    // The refresh token is bound: refused without the key on either instance, honoured with it.
    for (const base of [one.url, otherUrl]) {
      const stolen = await send(`${base}/token`, form({ grant_type: "refresh_token", refresh_token: issued.refresh_token, client_id: clientId }))
      expect(errorOf(stolen.body)).toBe("invalid_grant")
    }
    const refreshed = tokensOf(await send(`${otherUrl}/token`, form(
      { grant_type: "refresh_token", refresh_token: issued.refresh_token, client_id: clientId },
      await signProof(key, { htm: "POST", htu: `${otherUrl}/token`, iat: Math.floor(Date.now() / 1000) })
    )))
    expect(refreshed.refresh_token).not.toBe(issued.refresh_token)
  })

  it("carry a tool list change announced on one (SIGHUP) to a listen stream held by the other, which resumes there with Last-Event-ID", { timeout: 90_000 }, async () => {
    // The SDK 2.4.0 client on instance one listens for tool changes (it opens the stream itself in the 2026 era).
    const changes: Array<ReadonlyArray<string>> = []
    const provider = new MemoryOAuthProvider2()
    const { client } = await authorizeAndConnect2(instance(0), provider, headless, "auto", {
      onToolsChanged: (tools) => changes.push(tools.map((tool) => tool.name))
    })
    expect(client.getProtocolEra()).toBe("modern")
    for (let attempt = 0; changes.length === 0 && attempt < 40; attempt++) {
      if (attempt % 10 === 0) other.signal("SIGHUP")
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    expect(changes[0]).toEqual(expect.arrayContaining(["whoami", "greet"]))
    expect(other.lines().some((line) => line.includes("announced a tool list change"))).toBe(true)
    await client.close()

    // The same over plain HTTP: a stream opened on one, a change from the other, the connection lost, the stream resumed on the other.
    const token = provider.tokens()?.access_token ?? ""
    const envelope = {
      "io.modelcontextprotocol/protocolVersion": "2026-07-28",
      "io.modelcontextprotocol/clientCapabilities": {}
    }
    const opened = new AbortController()
    const response = await fetch(`${instance(0)}/mcp`, {
      method: "POST",
      signal: opened.signal,
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        accept: "text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "subscriptions/listen"
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: "listen:9", method: "subscriptions/listen", params: { notifications: { toolsListChanged: true }, _meta: envelope } })
    })
    expect(response.headers.get("content-type")).toContain("text/event-stream")
    const frames = sseFrames(response)
    const ack = await nextFrame(frames, (f) => f.data?.includes("subscriptions/acknowledged") ?? false)
    expect(JSON.parse(ack.data ?? "")).toMatchObject({ params: { notifications: { toolsListChanged: true }, _meta: { "io.modelcontextprotocol/subscriptionId": "listen:9" } } })
    const changed = await nextFrame(frames, (f) => f.data?.includes("tools/list_changed") ?? false, () => other.signal("SIGHUP"))
    expect(changed.id).toMatch(/\.\d+$/)
    opened.abort()

    const resumed = new AbortController()
    const again = await fetch(`${instance(1)}/mcp`, {
      signal: resumed.signal,
      headers: { authorization: `Bearer ${token}`, accept: "text/event-stream", "mcp-protocol-version": "2026-07-28", "last-event-id": ack.id ?? "" }
    })
    expect(again.status).toBe(200)
    const replayed = await nextFrame(sseFrames(again), (f) => f.data !== undefined)
    expect(replayed).toEqual(changed)
    resumed.abort()

    // Another caller cannot resume it.
    const { tokens: stranger } = await issueTokens(one.url)
    const refused = await fetch(`${instance(1)}/mcp`, {
      headers: { authorization: `Bearer ${stranger.access_token}`, accept: "text/event-stream", "mcp-protocol-version": "2026-07-28", "last-event-id": ack.id ?? "" }
    })
    expect(refused.status).toBe(404)
  })

  it("count wrong API keys from one address across authorizations and both instances: the 11th guess gets 429 on either, even with the right key", { timeout: 90_000 }, async () => {
    const aliceKey = "alice-redis-key-0123456789"
    // Sign-in on the consent page, not the development auto-approval.
    const { DEV_AUTO_APPROVE: _autoApprove, ...env } = instanceEnv()
    const shared = { ...env, API_KEYS: `alice=${aliceKey}` }
    const first = await startServer({ env: shared })
    const second = await startServer({ env: { ...shared, PUBLIC_URL: first.url } })
    try {
      const clientId = await registerPublicClient(first.url)
      const consentOn = (server: ServerProcess, state: string) => {
        const url = new URL(`http://127.0.0.1:${server.port}/authorize`)
        url.search = new URLSearchParams({
          response_type: "code",
          client_id: clientId,
          redirect_uri: REDIRECT_URI,
          state,
          scope: "mcp:tools",
          code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
          code_challenge_method: "S256"
        }).toString()
        return openConsent(url)
      }
      const onFirst = await consentOn(first, "one")
      const onSecond = await consentOn(second, "two")
      const last = await consentOn(first, "three")
      const lastOnSecond = { ...last, action: new URL(last.action.pathname, `http://127.0.0.1:${second.port}`) }
      // The page of either instance is the one public URL's: the browser sends its origin.
      const headers = { origin: new URL(first.url).origin }
      const guess = (form: typeof onFirst) => submitConsent(form, { action: "approve", apiKey: "not-alices-key-0123456789", headers })
      // Ten failures (the default per address), four per authorization at most (the fifth would refuse it), on both instances.
      for (const form of [onFirst, onFirst, onFirst, onFirst, onSecond, onSecond, onSecond, onSecond, last, lastOnSecond]) {
        expect((await guess(form)).status).toBe(401)
      }
      for (const form of [lastOnSecond, last]) {
        const locked = await guess(form)
        expect(locked.status).toBe(429)
        expect(Number(locked.headers.get("retry-after"))).toBeGreaterThan(0)
        expect(await locked.text()).toContain("Sign-in paused")
      }
      const right = await submitConsent(last, { action: "approve", apiKey: aliceKey, headers })
      expect(right.status).toBe(429)
      for (const server of [first, second]) {
        const log = server.lines().join("\n")
        expect(log).toContain("sign-in locked out")
        expect(log).not.toContain(aliceKey)
        expect(log).not.toContain("not-alices-key")
      }
    } finally {
      await Promise.all([first.stop(), second.stop()])
    }
  })

  it("answer a Redis that stops answering with 503 temporarily_unavailable, then serve again", { timeout: 90_000 }, async () => {
    const { clientId, tokens } = await issueTokens(one.url)
    const sessionId = await initializeSession(one.url, tokens.access_token)
    expect((await callToolRequest(instance(1), tokens.access_token, sessionId, "whoami")).status).toBe(200)

    // Frozen (SIGSTOP): connections stay open and nothing answers, so each command times out (2 s).
    await Effect.runPromise(redis.freeze)
    try {
      for (const reply of [
        await callToolRequest(one.url, tokens.access_token, sessionId, "whoami"),
        await refreshRequest(instance(1), clientId, tokens.refresh_token),
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
    let back = await callToolRequest(instance(1), tokens.access_token, sessionId, "whoami")
    for (let attempt = 0; back.status !== 200 && attempt < 20; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 500))
      back = await callToolRequest(instance(1), tokens.access_token, sessionId, "whoami")
    }
    expect(back.status).toBe(200)
    expect((await refreshRequest(one.url, clientId, tokens.refresh_token)).status).toBe(200)
    expect(one.lines().concat(other.lines()).some((l) => l.includes(tokens.access_token) || l.includes(tokens.refresh_token))).toBe(false)
  })
})

/** One server-sent event: its id and data lines (a comment frame has neither). */
interface SseFrame {
  readonly id?: string
  readonly data?: string
}

/** The frames of an SSE response, as they arrive. */
async function* sseFrames(response: Response): AsyncGenerator<SseFrame> {
  const reader = response.body?.getReader()
  if (reader === undefined) return
  const decoder = new TextDecoder()
  let buffered = ""
  for (;;) {
    const chunk = await reader.read()
    if (chunk.done) return
    buffered += decoder.decode(chunk.value, { stream: true })
    let end = buffered.indexOf("\n\n")
    while (end !== -1) {
      const lines = buffered.slice(0, end).split("\n")
      buffered = buffered.slice(end + 2)
      const id = lines.find((l) => l.startsWith("id: "))?.slice(4)
      const data = lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n")
      yield { ...(id === undefined ? {} : { id }), ...(data === "" ? {} : { data }) }
      end = buffered.indexOf("\n\n")
    }
  }
}

/** The next frame that matches, nudging (every 2 s) while waiting; fails after 20 s. */
const nextFrame = async (frames: AsyncGenerator<SseFrame>, matches: (frame: SseFrame) => boolean, nudge?: () => void): Promise<SseFrame> => {
  const timer = nudge === undefined ? undefined : setInterval(nudge, 2000)
  nudge?.()
  try {
    const deadline = performance.now() + 20_000
    while (performance.now() < deadline) {
      const next = await frames.next()
      if (next.done === true) break
      if (matches(next.value)) return next.value
    }
    throw new Error("no matching frame")
  } finally {
    if (timer !== undefined) clearInterval(timer)
  }
}
