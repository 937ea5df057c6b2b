/**
 * The server mounted by a user, as the two examples do it: inside an
 * @effect/platform application of its own with a custom Effect tool
 * (`examples/effect-app.ts`), and as a web-standard `fetch` handler inside a
 * plain `node:http` server with a zod tool (`examples/fetch-handler.ts`).
 * Each is run as a process and driven by the MCP SDK clients: the 1.x client
 * (2025 sessions) and the 2.4.0 client (2026-07-28).
 */
import { describe, expect, it } from "@effect/vitest"
import { authorizeAndConnect, headless, MemoryOAuthProvider } from "../support/mcpClient.ts"
import { authorizeAndConnect2, MemoryOAuthProvider2 } from "../support/mcpClient2026.ts"
import { startServer } from "../support/server.ts"

describe("the server mounted in a user's application", () => {
  it("an @effect/platform app: its own route, and the MCP server with a custom Effect tool (both eras)", { timeout: 240_000 }, async () => {
    const app = await startServer({ entry: "examples/effect-app.ts", timeout: 90_000 })
    try {
      expect(await (await fetch(`${app.url}/`)).text()).toBe("my application")
      const { client } = await authorizeAndConnect(app.url, new MemoryOAuthProvider(), headless)
      const sum = await client.callTool({ name: "add", arguments: { a: 2, b: 40 } })
      expect(sum.structuredContent).toEqual({ sum: 42, by: "demo-user" })
      const bad = await client.callTool({ name: "add", arguments: { a: "two" } })
      expect(bad.isError).toBe(true)
      await client.close()

      const modern = await authorizeAndConnect2(app.url, new MemoryOAuthProvider2(), headless, "auto")
      expect(modern.client.getProtocolEra()).toBe("modern")
      expect((await modern.client.callTool({ name: "add", arguments: { a: 1, b: 2 } })).structuredContent).toEqual({ sum: 3, by: "demo-user" })
      await modern.client.close()
    } finally {
      await app.stop()
    }
  })

  it("a fetch handler inside node:http, with a zod tool defined the SDK way (both eras)", { timeout: 240_000 }, async () => {
    const app = await startServer({ entry: "examples/fetch-handler.ts", timeout: 90_000 })
    try {
      const { client } = await authorizeAndConnect(app.url, new MemoryOAuthProvider(), headless)
      const echoed = await client.callTool({ name: "echo", arguments: { text: "hi" } })
      expect(echoed.content).toEqual([{ type: "text", text: "demo-user said: hi" }])
      const invalid = await client.callTool({ name: "echo", arguments: { text: 5 } })
      expect(invalid.isError).toBe(true)
      expect(JSON.stringify(invalid.content)).toContain("Input validation error")
      await client.close()

      const modern = await authorizeAndConnect2(app.url, new MemoryOAuthProvider2(), headless, "auto")
      expect(modern.client.getProtocolEra()).toBe("modern")
      expect((await modern.client.callTool({ name: "echo", arguments: { text: "new era" } })).content)
        .toEqual([{ type: "text", text: "demo-user said: new era" }])
      await modern.client.close()
    } finally {
      await app.stop()
    }
  })
})
