/**
 * The MCP SDK's 2.4.0 client against `npm start`, in the 2026-07-28 era:
 * 401 -> discovery -> registration -> PKCE -> token, then `server/discover`,
 * tools listed and called, a multi-round tool completed through an
 * `input_required` result and its sealed `requestState`; a tampered, a
 * foreign and a mis-bound state refused before the tool runs. The same
 * client in `legacy` mode still gets the 2025 session protocol.
 */
import { describe, expect, it } from "@effect/vitest"
import { CallToolResultSchema, ListToolsResultSchema } from "@modelcontextprotocol/core"
import { headless } from "../support/mcpClient.ts"
import { authorizeAndConnect2, MemoryOAuthProvider2 } from "../support/mcpClient2026.ts"
import { startServer } from "../support/server.ts"

const ENVELOPE = {
  "io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientCapabilities": { elicitation: { form: {} } },
  "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" }
}

/** A 2026-07-28 `tools/call` over plain HTTP with `token`. */
const rawCall = async (url: string, token: string, name: string, extra: Record<string, unknown> = {}) => {
  const response = await fetch(`${url}/mcp`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2026-07-28",
      "mcp-method": "tools/call",
      "mcp-name": name
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name, arguments: {}, ...extra, _meta: ENVELOPE } })
  })
  return { status: response.status, body: await response.json() as Record<string, any> }
}

describe("MCP SDK 2.4.0 client, protocol revision 2026-07-28", () => {
  it("authorizes, discovers the modern era, lists and calls tools, completes a multi-round tool; tampered state refused", { timeout: 120_000 }, async () => {
    const server = await startServer({ env: { STORE: "sqlite", DEV_AUTO_APPROVE: "alice" } })
    try {
      const provider = new MemoryOAuthProvider2()
      const asked: Array<Record<string, unknown>> = []
      const { client, transport } = await authorizeAndConnect2(server.url, provider, headless, "auto", (params) => {
        asked.push(params)
        return { name: "Ada" }
      })
      expect(client.getProtocolEra()).toBe("modern")
      expect(client.getNegotiatedProtocolVersion()).toBe("2026-07-28")
      expect(transport.sessionId).toBeUndefined()
      expect(client.getServerVersion()?.name).toBe("mcp-oauth-store")

      const tools = await client.listTools()
      expect(ListToolsResultSchema.safeParse(tools).success).toBe(true)
      expect(tools.tools.map((t) => t.name).sort()).toEqual(["greet", "whoami"])

      const me = await client.callTool({ name: "whoami", arguments: {} })
      expect(CallToolResultSchema.safeParse(me).success).toBe(true)
      expect(me.structuredContent).toMatchObject({ subject: "alice", protocolVersion: "2026-07-28" })

      // Multi-round: the first round asks the user's name (answered by the client's elicitation handler).
      const greeting = await client.callTool({ name: "greet", arguments: {} })
      expect(greeting.isError ?? false).toBe(false)
      expect(greeting.content).toEqual([{ type: "text", text: "Hello, Ada!" }])
      expect(asked).toHaveLength(1)
      expect(asked[0]).toMatchObject({ mode: "form", message: "What is your name?" })

      // The same rounds over plain HTTP: a real state, then the state tampered with, moved to another tool, or expired-looking.
      const token = provider.tokens()?.access_token ?? ""
      const first = await rawCall(server.url, token, "greet")
      expect(first.status).toBe(200)
      expect(first.body["result"]).toMatchObject({ resultType: "input_required", inputRequests: { name: { method: "elicitation/create" } } })
      const state: string = first.body["result"]["requestState"]
      expect(state).not.toContain("asked") // sealed: the client cannot read what the tool remembers
      const answers = { inputResponses: { name: { action: "accept", content: { name: "Grace" } } } }
      const done = await rawCall(server.url, token, "greet", { ...answers, requestState: state })
      expect(done.body["result"]).toMatchObject({ resultType: "complete", content: [{ type: "text", text: "Hello, Grace!" }] })

      const flipped = state.slice(0, -3) + (state.at(-3) === "A" ? "B" : "A") + state.slice(-2)
      for (const [tool, presented] of [["greet", flipped], ["whoami", state], ["greet", "v1.bogus"]] as const) {
        const refused = await rawCall(server.url, token, tool, { ...answers, requestState: presented })
        expect(refused.status).toBe(200)
        expect(refused.body["error"]).toEqual({ code: -32602, message: "Invalid or expired requestState", data: { reason: "invalid_request_state" } })
      }
      await client.close()

      // The same 2.4.0 client asking for the 2025 handshake gets a session, and a clear tool error from the multi-round tool.
      const { client: legacy, transport: legacyTransport } = await (async () => {
        const { newClient } = await import("../support/mcpClient2026.ts")
        const { StreamableHTTPClientTransport } = await import("@modelcontextprotocol/client")
        const t = new StreamableHTTPClientTransport(new URL("/mcp", server.url), { authProvider: provider })
        const c = newClient("legacy")
        await c.connect(t)
        return { client: c, transport: t }
      })()
      expect(legacy.getProtocolEra()).toBe("legacy")
      expect(legacyTransport.sessionId).toBeDefined()
      expect((await legacy.callTool({ name: "whoami", arguments: {} })).structuredContent).toMatchObject({ subject: "alice" })
      const refusedGreet = await legacy.callTool({ name: "greet", arguments: {} })
      expect(refusedGreet.isError).toBe(true)
      expect(JSON.stringify(refusedGreet.content)).toContain("2026-07-28")
      await legacy.close()
    } finally {
      await server.stop()
    }
  })
})
