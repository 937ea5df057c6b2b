/**
 * The OAuth and MCP flow over plain HTTP (fetch), as a client without an SDK
 * does it: register a public client, authorize through the development
 * switch (a 302 carrying the code), exchange the code, refresh, open an MCP
 * session, call a tool. Every step checks its status and throws with the
 * server's answer otherwise. Used by the e2e tests and the load bench.
 */
import { createHash, randomBytes } from "node:crypto"

export const REDIRECT_URI = "http://127.0.0.1:9/cb"
export const PROTOCOL_VERSION = "2025-06-18"

export interface Tokens {
  readonly access_token: string
  readonly refresh_token: string
  readonly expires_in: number
  readonly scope?: string
}

/** A fetch answer: status, headers and the body text. */
export interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly body: string
}

export const send = async (url: string | URL, init: RequestInit = {}): Promise<Reply> => {
  const response = await fetch(url, { redirect: "manual", ...init })
  return { status: response.status, headers: response.headers, body: await response.text() }
}

/** `reply` if its status is `status`; otherwise throws with `what` and the start of the body. */
export const expectStatus = (reply: Reply, status: number, what: string): Reply => {
  if (reply.status !== status) throw new Error(`${what}: expected ${status}, got ${reply.status}: ${reply.body.slice(0, 500)}`)
  return reply
}

const form = (params: Record<string, string>): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams(params).toString()
})

/** Register a public client (`token_endpoint_auth_method: none`); its `client_id`. */
export const registerPublicClient = async (baseUrl: string, scope = "mcp:tools"): Promise<string> => {
  const reply = await send(`${baseUrl}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: "http flow",
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      scope
    })
  })
  return (JSON.parse(expectStatus(reply, 201, "POST /register").body) as { client_id: string }).client_id
}

/** An authorization code from a server started with `DEV_AUTO_APPROVE`, and the PKCE verifier that redeems it. */
export const authorizeHeadless = async (
  baseUrl: string,
  clientId: string,
  scope = "mcp:tools",
  extra: Readonly<Record<string, string>> = {}
): Promise<{ readonly code: string; readonly verifier: string }> => {
  const verifier = randomBytes(32).toString("base64url")
  const state = randomBytes(8).toString("base64url")
  const url = new URL(`${baseUrl}/authorize`)
  for (const [name, value] of Object.entries({
    response_type: "code",
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    code_challenge: createHash("sha256").update(verifier).digest("base64url"),
    code_challenge_method: "S256",
    state,
    scope,
    ...extra
  })) url.searchParams.set(name, value)
  const reply = expectStatus(await send(url), 302, "GET /authorize (DEV_AUTO_APPROVE)")
  const back = new URL(reply.headers.get("location") ?? "")
  const code = back.searchParams.get("code")
  if (code === null || back.searchParams.get("state") !== state) throw new Error(`GET /authorize: no code or wrong state: ${back.search}`)
  return { code, verifier }
}

/** The code exchange, as sent; the caller reads the reply (a race test expects refusals). */
export const exchangeCodeRequest = (baseUrl: string, clientId: string, code: string, verifier: string): Promise<Reply> =>
  send(`${baseUrl}/token`, form({ grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, code_verifier: verifier, client_id: clientId }))

/** The refresh, as sent. */
export const refreshRequest = (baseUrl: string, clientId: string, refreshToken: string): Promise<Reply> =>
  send(`${baseUrl}/token`, form({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: clientId }))

/** The tokens of a `/token` reply that must have succeeded. */
export const tokensOf = (reply: Reply, what = "POST /token"): Tokens => {
  const tokens = JSON.parse(expectStatus(reply, 200, what).body) as Tokens
  if (typeof tokens.access_token !== "string" || typeof tokens.refresh_token !== "string") throw new Error(`${what}: no tokens`)
  return tokens
}

/** A fresh grant's tokens for a registered client (authorize, exchange). */
export const grantTokens = async (baseUrl: string, clientId: string, scope = "mcp:tools"): Promise<Tokens> => {
  const { code, verifier } = await authorizeHeadless(baseUrl, clientId, scope)
  return tokensOf(await exchangeCodeRequest(baseUrl, clientId, code, verifier), "POST /token (authorization_code)")
}

/** A client and a fresh grant's tokens (register, authorize, exchange). */
export const issueTokens = async (baseUrl: string, scope = "mcp:tools") => {
  const clientId = await registerPublicClient(baseUrl, scope)
  return { clientId, tokens: await grantTokens(baseUrl, clientId, scope) }
}

export const mcpHeaders = (accessToken: string, sessionId?: string): Record<string, string> => ({
  authorization: `Bearer ${accessToken}`,
  accept: "application/json, text/event-stream",
  "content-type": "application/json",
  ...(sessionId === undefined ? {} : { "mcp-session-id": sessionId, "mcp-protocol-version": PROTOCOL_VERSION })
})

/** `initialize` + `notifications/initialized`: the session id. */
export const initializeSession = async (baseUrl: string, accessToken: string): Promise<string> => {
  const reply = expectStatus(
    await send(`${baseUrl}/mcp`, {
      method: "POST",
      headers: mcpHeaders(accessToken),
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "http-flow", version: "0" } }
      })
    }),
    200,
    "POST /mcp initialize"
  )
  const sessionId = reply.headers.get("mcp-session-id")
  if (sessionId === null) throw new Error("POST /mcp initialize: no Mcp-Session-Id")
  expectStatus(
    await send(`${baseUrl}/mcp`, {
      method: "POST",
      headers: mcpHeaders(accessToken, sessionId),
      body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" })
    }),
    202,
    "POST /mcp notifications/initialized"
  )
  return sessionId
}

/** The JSON-RPC body of a `tools/call` without arguments. */
export const toolCallBody = (name: string): string =>
  JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name, arguments: {} } })

/** The per-request envelope of protocol revision 2026-07-28 (no session). */
export const MODERN_ENVELOPE = {
  "io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientCapabilities": {},
  "io.modelcontextprotocol/clientInfo": { name: "oauth-flow", version: "1.0.0" }
} as const

/** The headers of a 2026-07-28 `tools/call` of `name`. */
export const modernToolCallHeaders = (accessToken: string, name: string): Record<string, string> => ({
  authorization: `Bearer ${accessToken}`,
  accept: "application/json, text/event-stream",
  "content-type": "application/json",
  "mcp-protocol-version": "2026-07-28",
  "mcp-method": "tools/call",
  "mcp-name": name
})

/** The body of a 2026-07-28 `tools/call` of `name` with no arguments. */
export const modernToolCallBody = (name: string): string =>
  JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name, arguments: {}, _meta: MODERN_ENVELOPE } })

/** `tools/call`, as sent. */
export const callToolRequest = (baseUrl: string, accessToken: string, sessionId: string, name: string): Promise<Reply> =>
  send(`${baseUrl}/mcp`, { method: "POST", headers: mcpHeaders(accessToken, sessionId), body: toolCallBody(name) })
