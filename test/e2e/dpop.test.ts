/**
 * DPoP (RFC 9449) against the real server process (`npm start`):
 *
 * - the MCP SDK 2.4.0 client with a `DpopSession` (its provider's `dpop()`)
 *   completes the flow: registration, the code exchange and refreshes with
 *   proofs, `token_type: DPoP`, every `/mcp` call with `Authorization: DPoP`
 *   and a proof carrying `ath`; with `DPOP_NONCE=on` it follows the server's
 *   `use_dpop_nonce` at the token endpoint and at `/mcp`;
 * - over plain fetch with proofs signed by jose (so each can be bent), every
 *   refusal: a replayed proof, a proof for another URL or method, a stale
 *   `iat`, a DPoP-bound token as Bearer or without a proof or with another
 *   key's proof, and a stolen refresh token without the key or with another.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { DpopSession } from "@modelcontextprotocol/client"
import type { StoredOAuthTokens } from "@modelcontextprotocol/client"
import { decodeJwt } from "jose"
import { createHash, randomBytes } from "node:crypto"
import { setTimeout as sleep } from "node:timers/promises"
import { ath, dpopKey, type DpopKey, signProof } from "../support/dpop.ts"
import { headless } from "../support/mcpClient.ts"
import { authorizeAndConnect2, MemoryOAuthProvider2 } from "../support/mcpClient2026.ts"
import { authorizeHeadless, expectStatus, PROTOCOL_VERSION, REDIRECT_URI, type Reply, registerPublicClient, send } from "../support/oauthFlow.ts"
import { type ServerProcess, startServer } from "../support/server.ts"

/** The SDK's provider with a DPoP session, keeping every token set it was given. */
class DpopProvider extends MemoryOAuthProvider2 {
  readonly history: Array<StoredOAuthTokens> = []
  constructor(readonly session: DpopSession) {
    super()
  }
  dpop(): DpopSession {
    return this.session
  }
  override saveTokens(tokens: StoredOAuthTokens): void {
    super.saveTokens(tokens)
    this.history.push(tokens)
  }
}

/** The parsed JSON log lines of a server: the message and its annotations. */
const logs = (server: ServerProcess) =>
  server.lines().filter((l) => l.startsWith("{")).map((l) =>
    JSON.parse(l) as { readonly message: unknown; readonly annotations?: Record<string, unknown> }
  )

const nowSeconds = () => Math.floor(Date.now() / 1000)

/** The parameters of one challenge (`Bearer` or `DPoP`) of a `WWW-Authenticate` header. */
const challenge = (header: string | null, scheme: "Bearer" | "DPoP"): Record<string, string> | undefined => {
  const text = header ?? ""
  const start = scheme === "Bearer" ? text.indexOf("Bearer") : text.indexOf("DPoP")
  if (start === -1) return undefined
  const end = scheme === "Bearer" ? text.indexOf(", DPoP") : text.length
  const params: Record<string, string> = {}
  for (const match of text.slice(start, end === -1 ? text.length : end).matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) {
    params[match[1] ?? ""] = (match[2] ?? "").replace(/\\(.)/g, "$1")
  }
  return params
}

describe("DPoP with the MCP SDK 2.4.0 client (DpopSession)", () => {
  it("completes the flow with DPoP-bound tokens, refreshes with proofs, and its tokens are refused as Bearer", { timeout: 120_000 }, async () => {
    const server = await startServer({ env: { DEV_AUTO_APPROVE: "alice", ACCESS_TOKEN_TTL: "2" } })
    try {
      const session = await DpopSession.create()
      const provider = new DpopProvider(session)
      const { client } = await authorizeAndConnect2(server.url, provider, headless, "auto")
      expect(client.getNegotiatedProtocolVersion()).toBe("2026-07-28")
      const me = await client.callTool({ name: "whoami", arguments: {} })
      expect(me.structuredContent).toMatchObject({ subject: "alice" })

      const issued = provider.history[0]
      expect(issued?.token_type).toBe("DPoP")
      expect(decodeJwt(issued?.access_token ?? "")["cnf"]).toEqual({ jkt: session.thumbprint })

      // The token is bound: as Bearer (what a thief who copied it would send) it is refused.
      const asBearer = await send(`${server.url}/mcp`, {
        method: "POST",
        headers: { authorization: `Bearer ${issued?.access_token}`, "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" })
      })
      expect(asBearer.status).toBe(401)
      expect(challenge(asBearer.headers.get("www-authenticate"), "Bearer")?.["error"]).toBe("invalid_token")

      // The token expires; the SDK refreshes with a proof of the same key and carries on.
      await sleep(3200)
      expect((await client.callTool({ name: "whoami", arguments: {} })).structuredContent).toMatchObject({ subject: "alice" })
      expect(provider.history.length).toBeGreaterThanOrEqual(2)
      const refreshed = provider.history[provider.history.length - 1]
      expect(refreshed?.token_type).toBe("DPoP")
      expect(refreshed?.refresh_token).not.toBe(issued?.refresh_token)
      expect(decodeJwt(refreshed?.access_token ?? "")["cnf"]).toEqual({ jkt: session.thumbprint })

      const tokenLogs = logs(server).filter((l) => l.message === "tokens issued")
      expect(tokenLogs.length).toBeGreaterThanOrEqual(2)
      expect(tokenLogs.map((l) => l.annotations?.["token_type"])).toEqual(tokenLogs.map(() => "DPoP"))
      await client.close()
    } finally {
      await server.stop()
    }
  })

  it("with DPOP_NONCE=on it follows use_dpop_nonce at /token (400) and at /mcp (401) and completes", { timeout: 120_000 }, async () => {
    const server = await startServer({ env: { DEV_AUTO_APPROVE: "alice", DPOP_NONCE: "on" } })
    try {
      const session = await DpopSession.create()
      const provider = new DpopProvider(session)
      const { client } = await authorizeAndConnect2(server.url, provider, headless, "legacy")
      expect((await client.callTool({ name: "whoami", arguments: {} })).structuredContent).toMatchObject({ subject: "alice" })
      expect(provider.history[0]?.token_type).toBe("DPoP")
      // The SDK remembered one nonce per origin; the server's answers told it which.
      expect(session.nonceFor(server.url)).toMatch(/^[0-9a-z]+\.[A-Za-z0-9_-]{32}$/)
      // Told at /token (400 use_dpop_nonce), then at /mcp once it held a token (401 use_dpop_nonce), each retried at once.
      const lines = logs(server)
      const issuedAt = lines.findIndex((l) => l.message === "tokens issued")
      const statuses = (from: number, to: number) =>
        lines.slice(from, to).filter((l) => l.message === "request").map((l) => `${l.annotations?.["path"]} ${l.annotations?.["status"]}`)
      expect(statuses(0, issuedAt + 2)).toEqual(expect.arrayContaining(["/token 400", "/token 200"]))
      expect(statuses(issuedAt + 2, lines.length).slice(0, 2)).toEqual(["/mcp 401", "/mcp 200"])

      // A proof without the nonce: 401 use_dpop_nonce with a DPoP-Nonce to use.
      const key = await dpopKey()
      const token = provider.history[0]?.access_token ?? ""
      const proof = await signProof(key, { htm: "POST", htu: `${server.url}/mcp`, iat: nowSeconds(), ath: ath(token) })
      const refused = await send(`${server.url}/mcp`, {
        method: "POST",
        headers: { authorization: `DPoP ${token}`, dpop: proof, "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" })
      })
      expect(refused.status).toBe(401)
      expect(challenge(refused.headers.get("www-authenticate"), "DPoP")?.["error"]).toBe("use_dpop_nonce")
      expect(refused.headers.get("dpop-nonce")).toMatch(/^[0-9a-z]+\./)
      await client.close()
    } finally {
      await server.stop()
    }
  })
})

describe("DPoP over plain HTTP: what is refused", () => {
  let server: ServerProcess
  let tokenUrl: string
  let mcpUrl: string
  beforeAll(async () => {
    server = await startServer({ env: { DEV_AUTO_APPROVE: "alice" } })
    tokenUrl = `${server.url}/token`
    mcpUrl = `${server.url}/mcp`
  }, 60_000)
  afterAll(async () => {
    await server.stop()
  })

  const form = (params: Record<string, string>, headers: Record<string, string> = {}): RequestInit => ({
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(params).toString()
  })

  /** A token request proof for `key`, now (claims overridable). */
  const tokenProof = (key: DpopKey, overrides: Partial<Parameters<typeof signProof>[1]> = {}) =>
    signProof(key, { htm: "POST", htu: tokenUrl, iat: nowSeconds(), ...overrides })

  /** A public client's grant exchanged with a proof of `key`: its tokens. */
  const dpopGrant = async (key: DpopKey) => {
    const clientId = await registerPublicClient(server.url)
    const { code, verifier } = await authorizeHeadless(server.url, clientId)
    const reply = expectStatus(
      await send(tokenUrl, form(
        { grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, code_verifier: verifier, client_id: clientId },
        { dpop: await tokenProof(key) }
      )),
      200,
      "POST /token with DPoP"
    )
    expect(reply.headers.get("cache-control")).toBe("no-store")
    const tokens = JSON.parse(reply.body) as { access_token: string; refresh_token: string; token_type: string }
    return { clientId, ...tokens }
  }

  /** `POST /mcp` initialize with `authorization` and an optional proof. */
  const initialize = (authorization: string, proof?: string): Promise<Reply> =>
    send(mcpUrl, {
      method: "POST",
      headers: {
        authorization,
        ...(proof === undefined ? {} : { dpop: proof }),
        "content-type": "application/json",
        accept: "application/json, text/event-stream"
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "dpop-raw", version: "0" } }
      })
    })

  /** A resource proof for `token` (claims overridable). */
  const mcpProof = (key: DpopKey, token: string, overrides: Partial<Parameters<typeof signProof>[1]> = {}) =>
    signProof(key, { htm: "POST", htu: mcpUrl, iat: nowSeconds(), ath: ath(token), ...overrides })

  const refusedAtMcp = (reply: Reply, error: string, scheme: "Bearer" | "DPoP") => {
    expect(reply.status, reply.body).toBe(401)
    expect(JSON.parse(reply.body)["error"]).toBe(error)
    const header = reply.headers.get("www-authenticate")
    expect(challenge(header, scheme)?.["error"]).toBe(error)
    expect(challenge(header, "DPoP")?.["algs"]).toContain("ES256")
    expect(challenge(header, "DPoP")?.["resource_metadata"]).toBe(`${server.url}/.well-known/oauth-protected-resource/mcp`)
  }

  it("advertises DPoP in both metadata documents", async () => {
    const as = JSON.parse((await send(`${server.url}/.well-known/oauth-authorization-server`)).body) as Record<string, unknown>
    expect(as["dpop_signing_alg_values_supported"]).toEqual(expect.arrayContaining(["ES256", "PS256", "EdDSA"]))
    expect(as["dpop_signing_alg_values_supported"]).not.toContain("none")
    expect((as["dpop_signing_alg_values_supported"] as Array<string>).some((alg) => alg.startsWith("HS"))).toBe(false)
    const prm = JSON.parse((await send(`${server.url}/.well-known/oauth-protected-resource/mcp`)).body) as Record<string, unknown>
    expect(prm).toMatchObject({ dpop_bound_access_tokens_required: false, dpop_signing_alg_values_supported: as["dpop_signing_alg_values_supported"] })
  })

  it("a client with a DPoP key completes the flow and calls /mcp with DPoP; introspection names the key", { timeout: 60_000 }, async () => {
    const key = await dpopKey()
    const grant = await dpopGrant(key)
    expect(grant.token_type).toBe("DPoP")
    expect(decodeJwt(grant.access_token)["cnf"]).toEqual({ jkt: key.jkt })
    const opened = await initialize(`DPoP ${grant.access_token}`, await mcpProof(key, grant.access_token))
    expect(opened.status, opened.body).toBe(200)
    expect(opened.headers.get("mcp-session-id")).toBeTruthy()
    const introspection = JSON.parse(expectStatus(
      await send(`${server.url}/introspect`, form({ token: grant.access_token, client_id: grant.clientId })),
      200,
      "POST /introspect"
    ).body) as Record<string, unknown>
    expect(introspection).toMatchObject({ active: true, token_type: "DPoP", cnf: { jkt: key.jkt } })
  })

  it("dpop_jkt at /authorize binds the code to the key: another key's proof gets invalid_grant, the key's own proof the tokens", { timeout: 60_000 }, async () => {
    const key = await dpopKey()
    const clientId = await registerPublicClient(server.url)
    const exchange = async (code: string, verifier: string, proof: string) =>
      send(tokenUrl, form({ grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, code_verifier: verifier, client_id: clientId }, { dpop: proof }))
    const stolen = await authorizeHeadless(server.url, clientId, "mcp:tools", { dpop_jkt: key.jkt })
    const refused = await exchange(stolen.code, stolen.verifier, await tokenProof(await dpopKey()))
    expect(refused.status, refused.body).toBe(400)
    expect(JSON.parse(refused.body)).toMatchObject({ error: "invalid_grant" })
    const own = await authorizeHeadless(server.url, clientId, "mcp:tools", { dpop_jkt: key.jkt })
    const tokens = JSON.parse(expectStatus(await exchange(own.code, own.verifier, await tokenProof(key)), 200, "POST /token").body) as Record<string, unknown>
    expect(tokens["token_type"]).toBe("DPoP")
    expect(decodeJwt(String(tokens["access_token"]))["cnf"]).toEqual({ jkt: key.jkt })
  })

  it("a client registered with dpop_bound_access_tokens gets invalid_request at /token without a DPoP proof", { timeout: 60_000 }, async () => {
    const registered = JSON.parse(expectStatus(
      await send(`${server.url}/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: "none", scope: "mcp:tools", dpop_bound_access_tokens: true })
      }),
      201,
      "POST /register"
    ).body) as Record<string, unknown>
    expect(registered["dpop_bound_access_tokens"]).toBe(true)
    const clientId = String(registered["client_id"])
    const { code, verifier } = await authorizeHeadless(server.url, clientId)
    const params = { grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, code_verifier: verifier, client_id: clientId }
    const refused = await send(tokenUrl, form(params))
    expect(refused.status, refused.body).toBe(400)
    expect(JSON.parse(refused.body)).toMatchObject({ error: "invalid_request" })
    const issued = JSON.parse(expectStatus(await send(tokenUrl, form(params, { dpop: await tokenProof(await dpopKey()) })), 200, "POST /token").body) as Record<string, unknown>
    expect(issued["token_type"]).toBe("DPoP")
  })

  it("/mcp refuses a replayed proof, a proof for another URL or method, a stale iat, and a proof without ath", { timeout: 60_000 }, async () => {
    const key = await dpopKey()
    const { access_token: token } = await dpopGrant(key)
    const proof = await mcpProof(key, token)
    expect((await initialize(`DPoP ${token}`, proof)).status).toBe(200)
    refusedAtMcp(await initialize(`DPoP ${token}`, proof), "invalid_dpop_proof", "DPoP")
    refusedAtMcp(await initialize(`DPoP ${token}`, await mcpProof(key, token, { htu: tokenUrl })), "invalid_dpop_proof", "DPoP")
    refusedAtMcp(await initialize(`DPoP ${token}`, await mcpProof(key, token, { htu: "https://elsewhere.example/mcp" })), "invalid_dpop_proof", "DPoP")
    refusedAtMcp(await initialize(`DPoP ${token}`, await mcpProof(key, token, { htm: "GET" })), "invalid_dpop_proof", "DPoP")
    refusedAtMcp(await initialize(`DPoP ${token}`, await mcpProof(key, token, { iat: nowSeconds() - 120 })), "invalid_dpop_proof", "DPoP")
    refusedAtMcp(await initialize(`DPoP ${token}`, await mcpProof(key, token, { iat: nowSeconds() + 120 })), "invalid_dpop_proof", "DPoP")
    const noAth = await signProof(key, { htm: "POST", htu: mcpUrl, iat: nowSeconds() })
    refusedAtMcp(await initialize(`DPoP ${token}`, noAth), "invalid_dpop_proof", "DPoP")
    // The query of the request URL is not part of htu: a proof without it still matches.
    expect((await initialize(`DPoP ${token}`, await mcpProof(key, token, { htu: `${mcpUrl}?ignored=1` }))).status).toBe(200)
  })

  it("/mcp refuses a DPoP-bound token as Bearer, without a proof, or with another key's proof; a bearer token under DPoP", { timeout: 60_000 }, async () => {
    const key = await dpopKey()
    const { access_token: token } = await dpopGrant(key)
    refusedAtMcp(await initialize(`Bearer ${token}`), "invalid_token", "Bearer")
    refusedAtMcp(await initialize(`Bearer ${token}`, await mcpProof(key, token)), "invalid_token", "Bearer")
    refusedAtMcp(await initialize(`DPoP ${token}`), "invalid_dpop_proof", "DPoP")
    const thief = await dpopKey()
    const stolen = await initialize(`DPoP ${token}`, await mcpProof(thief, token))
    refusedAtMcp(stolen, "invalid_token", "DPoP")
    expect(challenge(stolen.headers.get("www-authenticate"), "DPoP")?.["error_description"]).toBe("Invalid DPoP key binding")

    // Clients without DPoP keep getting Bearer tokens, which are refused under the DPoP scheme.
    const clientId = await registerPublicClient(server.url)
    const { code, verifier } = await authorizeHeadless(server.url, clientId)
    const bearer = JSON.parse(expectStatus(
      await send(tokenUrl, form({ grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, code_verifier: verifier, client_id: clientId })),
      200,
      "POST /token without DPoP"
    ).body) as { access_token: string; token_type: string }
    expect(bearer.token_type).toBe("Bearer")
    expect((await initialize(`Bearer ${bearer.access_token}`)).status).toBe(200)
    refusedAtMcp(await initialize(`DPoP ${bearer.access_token}`, await mcpProof(key, bearer.access_token)), "invalid_token", "DPoP")
  })

  it("/token refuses a replayed proof and a proof for another URL or method (400 invalid_dpop_proof)", { timeout: 60_000 }, async () => {
    const key = await dpopKey()
    const clientId = await registerPublicClient(server.url)
    const exchange = async (proof: string) => {
      const { code, verifier } = await authorizeHeadless(server.url, clientId)
      return send(tokenUrl, form({ grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, code_verifier: verifier, client_id: clientId }, { dpop: proof }))
    }
    const proof = await tokenProof(key)
    expect((await exchange(proof)).status).toBe(200)
    for (const [bad, what] of [
      [proof, "replayed"],
      [await tokenProof(key, { htu: mcpUrl }), "another URL"],
      [await tokenProof(key, { htu: `${server.url}/revoke` }), "another URL"],
      [await tokenProof(key, { htm: "PUT" }), "another method"],
      [await tokenProof(key, { iat: nowSeconds() - 61 }), "stale"],
      [`${proof}, ${await tokenProof(key)}`, "two proofs"],
      [createHash("sha256").update(randomBytes(8)).digest("base64url"), "not a JWT"]
    ] as const) {
      const reply = await exchange(bad)
      expect(reply.status, what).toBe(400)
      expect(JSON.parse(reply.body)["error"], what).toBe("invalid_dpop_proof")
      expect(reply.headers.get("www-authenticate"), what).toBeNull()
    }
  })

  it("a stolen refresh token is refused without the key or with another key; the key's owner refreshes", { timeout: 60_000 }, async () => {
    const key = await dpopKey()
    const grant = await dpopGrant(key)
    const refresh = async (proof?: string) =>
      send(tokenUrl, form(
        { grant_type: "refresh_token", refresh_token: grant.refresh_token, client_id: grant.clientId },
        proof === undefined ? {} : { dpop: proof }
      ))
    const without = await refresh()
    expect(without.status).toBe(400)
    expect(JSON.parse(without.body)).toMatchObject({ error: "invalid_grant" })
    const thief = await dpopKey()
    const withAnother = await refresh(await tokenProof(thief))
    expect(withAnother.status).toBe(400)
    expect(JSON.parse(withAnother.body)).toMatchObject({ error: "invalid_grant" })
    expect(logs(server).some((l) => l.message === "DPoP-bound refresh token presented without a proof of its key")).toBe(true)

    const owner = JSON.parse(expectStatus(await refresh(await tokenProof(key)), 200, "refresh with the key").body) as {
      access_token: string
      refresh_token: string
      token_type: string
    }
    expect(owner.token_type).toBe("DPoP")
    expect(decodeJwt(owner.access_token)["cnf"]).toEqual({ jkt: key.jkt })
    // The successor is bound too.
    const next = await send(tokenUrl, form({ grant_type: "refresh_token", refresh_token: owner.refresh_token, client_id: grant.clientId }))
    expect(JSON.parse(next.body)).toMatchObject({ error: "invalid_grant" })
    // Nothing secret reached the log.
    const text = server.lines().join("\n")
    for (const secret of [grant.access_token, grant.refresh_token, owner.access_token, owner.refresh_token]) expect(text).not.toContain(secret)
  })
})
