/**
 * What 2026 MCP clients expect of the authorization server, over real HTTP
 * against the server process: RFC 9068 access tokens accepted by a strict
 * validator (oauth4webapi's `validateJwtAccessToken`), refresh tokens for
 * clients that register without `grant_types`, native redirect URIs (RFC
 * 8252: loopback in any port, private-use schemes), resource indicators
 * with a trailing slash (the MCP Inspector's form, from the root RFC 9728
 * document), and the metadata that advertises metadata documents.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { createHash, randomBytes } from "node:crypto"
import * as oauth from "oauth4webapi"
import { initializeSession, issueTokens, mcpHeaders, refreshRequest, send, tokensOf } from "../support/oauthFlow.ts"
import { type ServerProcess, startServer } from "../support/server.ts"

let server: ServerProcess

beforeAll(async () => {
  server = await startServer({ env: { DEV_AUTO_APPROVE: "alice" } })
}, 60_000)
afterAll(async () => {
  await server.stop()
})

const json = (body: string) => JSON.parse(body) as Record<string, any>

const register = (metadata: Record<string, unknown>) =>
  send(`${server.url}/register`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(metadata) })

/** GET /authorize through the development switch: the reply (a 302 on success). */
const authorizeAt = (clientId: string, redirectUri: string, extra: Record<string, string> = {}) => {
  const verifier = randomBytes(32).toString("base64url")
  const url = new URL(`${server.url}/authorize`)
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: redirectUri,
    code_challenge: createHash("sha256").update(verifier).digest("base64url"),
    code_challenge_method: "S256",
    state: "st",
    scope: "mcp:tools",
    ...extra
  }).toString()
  return send(url).then((reply) => ({ reply, verifier }))
}

const exchange = (clientId: string, code: string, verifier: string, redirectUri: string, extra: Record<string, string> = {}) =>
  send(`${server.url}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code, code_verifier: verifier, redirect_uri: redirectUri, client_id: clientId, ...extra })
      .toString()
  })

const codeOf = (location: string | null): string => {
  const code = new URL(location ?? "").searchParams.get("code")
  if (code === null) throw new Error(`no code in ${location}`)
  return code
}

describe("authorization as 2026 MCP clients expect it", () => {
  it("advertises Client ID Metadata Document support in its RFC 8414 metadata", async () => {
    const metadata = json((await send(`${server.url}/.well-known/oauth-authorization-server`)).body)
    expect(metadata["client_id_metadata_document_supported"]).toBe(true)
    expect(metadata["grant_types_supported"]).toEqual(["authorization_code", "refresh_token"])
  })

  it("issues RFC 9068 access tokens that oauth4webapi's strict validateJwtAccessToken accepts", async () => {
    const { clientId, tokens } = await issueTokens(server.url)
    const [header] = tokens.access_token.split(".")
    expect(JSON.parse(Buffer.from(header ?? "", "base64url").toString())).toMatchObject({ typ: "at+jwt", alg: "RS256" })

    const issuer = new URL(server.url)
    const as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: "oauth2", [oauth.allowInsecureRequests]: true })
    )
    const request = new Request(`${server.url}/mcp`, { headers: { authorization: `Bearer ${tokens.access_token}` } })
    const claims = await oauth.validateJwtAccessToken(as, request, `${server.url}/mcp`, { [oauth.allowInsecureRequests]: true })
    expect(claims).toMatchObject({ iss: server.url, aud: `${server.url}/mcp`, sub: "alice", client_id: clientId, scope: "mcp:tools" })
    expect(typeof claims.jti).toBe("string")
    expect(claims.exp - claims.iat).toBe(3600)

    // The validator is strict: another audience is refused, so its acceptance above means something.
    await expect(oauth.validateJwtAccessToken(as, request, `${server.url}/other`, { [oauth.allowInsecureRequests]: true })).rejects.toThrow()
    // And the server itself accepts the token at /mcp.
    expect(await initializeSession(server.url, tokens.access_token)).toMatch(/./)
  })

  it("gives a client registered without grant_types a refresh token (the default policy), and honors an explicit list", async () => {
    // The registration of examples/first-tool-call.sh: no grant_types, as most MCP clients send it.
    const redirect = "http://127.0.0.1:9/callback"
    const registered = json(expectOk(await register({ client_name: "curl", redirect_uris: [redirect], token_endpoint_auth_method: "none" }), 201))
    expect(registered["grant_types"]).toEqual(["authorization_code", "refresh_token"])
    const { reply, verifier } = await authorizeAt(registered["client_id"], redirect)
    const tokens = tokensOf(await exchange(registered["client_id"], codeOf(reply.headers.get("location")), verifier, redirect))
    const refreshed = tokensOf(await refreshRequest(server.url, registered["client_id"], tokens.refresh_token), "refresh")
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token)

    const codeOnly = json(expectOk(await register({ redirect_uris: [redirect], token_endpoint_auth_method: "none", grant_types: ["authorization_code"] }), 201))
    const second = await authorizeAt(codeOnly["client_id"], redirect)
    const issued = json(expectOk(await exchange(codeOnly["client_id"], codeOf(second.reply.headers.get("location")), second.verifier, redirect), 200))
    expect(issued["refresh_token"]).toBeUndefined()
  })

  it("RFC 8252 §7.3: a loopback redirect URI matches any port, registered with or without one; path still exact", async () => {
    for (const registeredUri of ["http://127.0.0.1:33418/callback", "http://127.0.0.1/callback", "http://[::1]:33418/callback", "http://localhost/callback"]) {
      const client = json(expectOk(await register({ redirect_uris: [registeredUri], token_endpoint_auth_method: "none" }), 201))
      const presented = registeredUri.replace(/^(http:\/\/[^/]+?)(:\d+)?\/callback$/, "$1:51234/callback")
      const { reply, verifier } = await authorizeAt(client["client_id"], presented)
      expect(reply.status, registeredUri).toBe(302)
      const location = new URL(reply.headers.get("location") ?? "")
      expect(`${location.origin}${location.pathname}`).toBe(presented)
      tokensOf(await exchange(client["client_id"], codeOf(reply.headers.get("location")), verifier, presented))
      const wrongPath = await authorizeAt(client["client_id"], presented.replace("/callback", "/other"))
      expect(wrongPath.reply.status).toBe(400)
    }
  })

  it("RFC 8252 §7.1: a public client registers private-use schemes and is redirected there; dangerous schemes are refused", async () => {
    for (const uri of ["cursor://anysphere.cursor-retrieval/oauth/user-callback", "vscode://vscode.github-authentication/did-authenticate", "com.example.app:/oauth2redirect"]) {
      const client = json(expectOk(await register({ client_name: "native", redirect_uris: [uri], token_endpoint_auth_method: "none" }), 201))
      const { reply } = await authorizeAt(client["client_id"], uri)
      expect(reply.status).toBe(302)
      expect(reply.headers.get("location")?.startsWith(`${uri}?code=`)).toBe(true)
    }
    for (const uri of ["javascript:alert(1)", "data:text/html,hi", "file:///etc/passwd", "http://app.example/cb"]) {
      const refused = await register({ redirect_uris: [uri], token_endpoint_auth_method: "none" })
      expect(refused.status).toBe(400)
      expect(json(refused.body)["error"]).toBe("invalid_redirect_uri")
    }
    const confidential = await register({ redirect_uris: ["cursor://x/cb"], token_endpoint_auth_method: "client_secret_basic" })
    expect(json(confidential.body)["error"]).toBe("invalid_redirect_uri")
  })

  it("accepts the Inspector's trailing-slash resource from the root RFC 9728 document; tokens carry the canonical form and work at /mcp", async () => {
    const root = json((await send(`${server.url}/.well-known/oauth-protected-resource`)).body)
    expect(root["resource"]).toBe(server.url)
    const redirect = "http://127.0.0.1:9/callback"
    const client = json(expectOk(await register({ redirect_uris: [redirect], token_endpoint_auth_method: "none" }), 201))
    for (
      const [sent, audience] of [
        [new URL(root["resource"]).href, server.url],
        [`${server.url}/mcp/`, `${server.url}/mcp`],
        [`${server.url.replace("http://", "HTTP://")}/mcp`, `${server.url}/mcp`]
      ] as const
    ) {
      expect(sent).not.toBe(audience)
      const { reply, verifier } = await authorizeAt(client["client_id"], redirect, { resource: sent })
      expect(reply.status, sent).toBe(302)
      const tokens = tokensOf(await exchange(client["client_id"], codeOf(reply.headers.get("location")), verifier, redirect, { resource: sent }))
      const claims = JSON.parse(Buffer.from(tokens.access_token.split(".")[1] ?? "", "base64url").toString()) as { aud: string }
      expect(claims.aud).toBe(audience)
      const refreshed = await send(`${server.url}/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: tokens.refresh_token, client_id: client["client_id"], resource: sent }).toString()
      })
      expect(refreshed.status).toBe(200)
      const session = await initializeSession(server.url, tokens.access_token)
      const call = await send(`${server.url}/mcp`, {
        method: "POST",
        headers: mcpHeaders(tokens.access_token, session),
        body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "whoami", arguments: {} } })
      })
      expect(call.status).toBe(200)
    }
    const elsewhere = await authorizeAt(client["client_id"], redirect, { resource: `${server.url}/elsewhere` })
    expect(new URL(elsewhere.reply.headers.get("location") ?? "").searchParams.get("error")).toBe("invalid_target")
  })
})

function expectOk(reply: { status: number; body: string }, status: number): string {
  if (reply.status !== status) throw new Error(`expected ${status}, got ${reply.status}: ${reply.body}`)
  return reply.body
}
