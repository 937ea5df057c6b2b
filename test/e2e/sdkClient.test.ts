/**
 * The official MCP SDK client against the real server process: discovery,
 * dynamic registration, authorization (headless via the development switch),
 * token exchange, initialize, tools/list, tools/call; the access token expires
 * and the client refreshes by itself; then the server restarts on the same
 * SQLite file and the same client's session and refresh token still work.
 */
import { describe, expect, it } from "@effect/vitest"
import { statSync } from "node:fs"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { authorizeAndConnect, headless, MemoryOAuthProvider } from "../support/mcpClient.ts"
import { startServer } from "../support/server.ts"

const TTL_SECONDS = 2

/** The parsed JSON log lines of a server. */
const logs = (lines: ReadonlyArray<string>) => lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>)

/** The key ids the server publishes. */
const kids = async (url: string) => {
  const jwks = await (await fetch(`${url}/.well-known/jwks.json`)).json() as { keys: Array<{ kid: string }> }
  return jwks.keys.map((k) => k.kid).sort()
}

const whoami = async (client: Awaited<ReturnType<typeof authorizeAndConnect>>["client"]) => {
  const result = await client.callTool({ name: "whoami", arguments: {} })
  expect(result.isError ?? false).toBe(false)
  return result.structuredContent as Record<string, unknown>
}

describe("MCP SDK client against the server on SQLite", () => {
  it("authorizes, calls tools, refreshes by itself, and survives a restart", { timeout: 120_000 }, async () => {
    const env = { STORE: "sqlite", DEV_AUTO_APPROVE: "alice", ACCESS_TOKEN_TTL: String(TTL_SECONDS) }
    const first = await startServer({ env })
    const provider = new MemoryOAuthProvider()
    let secrets: Array<string> = []
    try {
      const { client, transport } = await authorizeAndConnect(first.url, provider, headless)
      expect(transport.sessionId).toBeDefined()
      const tools = await client.listTools()
      expect(tools.tools.map((t) => t.name)).toContain("whoami")
      const me = await whoami(client)
      expect(me["subject"]).toBe("alice")
      expect(me["sessionId"]).toBe(transport.sessionId)

      // The access token expires; the next call meets 401 and the SDK refreshes on its own.
      await sleep(TTL_SECONDS * 1000 + 1200)
      expect((await whoami(client))["subject"]).toBe("alice")
      expect(provider.tokenHistory.length).toBe(2)
      const [issued, refreshed] = provider.tokenHistory
      expect(refreshed?.refresh_token).toBeDefined()
      expect(refreshed?.refresh_token).not.toBe(issued?.refresh_token)

      // Restart on the same data directory (SQLite file + generated key file).
      const keysBefore = await kids(first.url)
      expect(await first.stop("SIGTERM")).toBe(0)
      expect(logs(first.lines()).some((l) => l["message"] === "stopped")).toBe(true)
      const keyFile = statSync(join(first.dataDir, "encryption.key"))
      expect(keyFile.mode & 0o777).toBe(0o600)
      expect(logs(first.lines()).filter((l) => String(l["message"]).includes("generated an encryption key")).length).toBe(1)

      const second = await startServer({ env: { ...env, PORT: String(first.port), DATA_DIR: first.dataDir } })
      try {
        expect(logs(second.lines()).some((l) => String(l["message"]).includes("generated"))).toBe(false)
        // The signing keys were persisted (sealed in the store), not generated again.
        expect(await kids(second.url)).toEqual(keysBefore)
        // The same client, the same session: the session lives in the store, not in the old process.
        // (The access token may have expired during the restart: then this call refreshes already.)
        expect((await whoami(client))["subject"]).toBe("alice")
        expect((await whoami(client))["sessionId"]).toBe(transport.sessionId)
        await sleep(TTL_SECONDS * 1000 + 1200)
        expect((await whoami(client))["subject"]).toBe("alice")
        // Refreshed by the restarted process with the refresh token the first one issued.
        expect(provider.tokenHistory.length).toBeGreaterThanOrEqual(3)
        await client.close()
        secrets = provider.tokenHistory.flatMap((t) => [t.access_token, t.refresh_token ?? ""]).filter((s) => s.length > 0)
        for (const line of [...first.lines(), ...second.lines(), ...first.errors(), ...second.errors()]) {
          for (const secret of secrets) expect(line.includes(secret)).toBe(false)
        }
      } finally {
        await second.stop()
      }
    } finally {
      await first.stop()
    }
  })
})
