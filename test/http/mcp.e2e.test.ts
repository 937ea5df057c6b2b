/**
 * `/mcp` on the real server process: the MCP SDK client authorized headlessly
 * (the development switch), `tools/list` and `whoami` over its session, the
 * session ended with DELETE; the transport refusals as plain HTTP sees them;
 * nothing secret in the server's log.
 */
import { describe, expect, it } from "@effect/vitest"
import { authorizeAndConnect, headless, MemoryOAuthProvider } from "../support/mcpClient.ts"
import { startServer } from "../support/server.ts"

describe("/mcp on the real server", () => {
  it("the SDK client initializes, lists and calls whoami, and ends its session", { timeout: 120_000 }, async () => {
    const server = await startServer({ env: { DEV_AUTO_APPROVE: "alice" } })
    try {
      const mcp = `${server.url}/mcp`
      const challenge = await fetch(mcp, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })
      expect(challenge.status).toBe(401)
      const params = `resource_metadata="${server.url}/.well-known/oauth-protected-resource/mcp", scope="mcp:tools"`
      expect(challenge.headers.get("www-authenticate")).toBe(`Bearer ${params}, DPoP ${params}, algs="ES256 ES384 ES512 RS256 RS384 RS512 PS256 PS384 PS512 EdDSA Ed25519"`)

      const provider = new MemoryOAuthProvider()
      const { client, transport } = await authorizeAndConnect(server.url, provider, headless)
      const sessionId = transport.sessionId
      expect(sessionId).toEqual(expect.any(String))
      expect(client.getServerVersion()).toMatchObject({ name: "mcp-oauth-store" })

      const { tools } = await client.listTools()
      expect(tools.map((tool) => tool.name)).toContain("whoami")
      const me = await client.callTool({ name: "whoami", arguments: {} })
      expect(me.structuredContent).toMatchObject({ subject: "alice", sessionId })

      const accessToken = provider.tokens()?.access_token as string
      const headers = {
        authorization: `Bearer ${accessToken}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream"
      }
      const ping = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" })
      const noSession = await fetch(mcp, { method: "POST", headers, body: ping })
      expect(noSession.status).toBe(400)
      const unknown = await fetch(mcp, { method: "POST", headers: { ...headers, "mcp-session-id": "nope" }, body: ping })
      expect(unknown.status).toBe(404)
      const malformed = await fetch(mcp, { method: "POST", headers: { ...headers, "mcp-session-id": sessionId as string }, body: "{" })
      expect(malformed.status).toBe(400)
      expect(await malformed.json()).toMatchObject({ error: { code: -32700 } })
      const stream = await fetch(mcp, { headers: { authorization: headers.authorization, accept: "text/event-stream" } })
      expect(stream.status).toBe(405)

      await transport.terminateSession()
      const ended = await fetch(mcp, { method: "POST", headers: { ...headers, "mcp-session-id": sessionId as string }, body: ping })
      expect(ended.status).toBe(404)
      await client.close()

      for (const line of [...server.lines(), ...server.errors()]) {
        expect(line).not.toContain(accessToken)
        expect(line).not.toContain(sessionId)
      }
    } finally {
      await server.stop()
    }
  })
})
