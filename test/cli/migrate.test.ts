/**
 * `migrate` as a process, under a running MCP client: the server starts on
 * SQLite and an MCP SDK client authorizes and opens a session; then, hop by
 * hop, the server stops, the tool copies its store to the next backend
 * (SQLite -> Redis -> file -> SQLite), and the server starts on that one. At
 * every hop the same client keeps its session, its access token still
 * verifies (the signing keys moved too), and its refresh token rotates on the
 * new backend (access tokens live 2 s, so the SDK refreshes by itself).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { bundleCli, type CliCommand, runCli } from "../support/cli.ts"
import { authorizeAndConnect, headless, MemoryOAuthProvider } from "../support/mcpClient.ts"
import { acquireRedisServer, freePort, freshPrefix, hasRedisServer, type RedisServer } from "../support/redis.ts"
import { type ServerProcess, startServer } from "../support/server.ts"

const TTL_SECONDS = 2

let cli: CliCommand
let redis: RedisServer
let scope: Scope.CloseableScope
const dir = mkdtempSync(join(tmpdir(), "mcp-cli-migrate-"))

beforeAll(async () => {
  cli = await bundleCli()
  scope = Effect.runSync(Scope.make())
  if (hasRedisServer) redis = await Effect.runPromise(Scope.extend(acquireRedisServer, scope))
}, 120_000)
afterAll(async () => {
  cli?.dispose()
  await Effect.runPromise(Scope.close(scope, Exit.void))
  rmSync(dir, { recursive: true, force: true })
})

const kids = async (url: string) => {
  const jwks = await (await fetch(`${url}/.well-known/jwks.json`)).json() as { keys: Array<{ kid: string }> }
  return jwks.keys.map((k) => k.kid).sort()
}

describe.skipIf(!hasRedisServer)("migrate as a process", () => {
  it("SQLite -> Redis -> file -> SQLite: a running client's session and refresh token work at every hop", { timeout: 300_000 }, async () => {
    const key = randomBytes(32).toString("base64url")
    const prefix = freshPrefix()
    const port = await freePort()
    const hops = [
      { name: "sqlite", env: { STORE: "sqlite", SQLITE_PATH: join(dir, "first.db") }, store: `sqlite:${join(dir, "first.db")}` },
      {
        name: "redis",
        env: { STORE: "redis", REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix },
        store: `${redis.url}/0?prefix=${encodeURIComponent(prefix)}`
      },
      { name: "file", env: { STORE: "file", RS_TOKENS_FILE: join(dir, "tokens.enc") }, store: `file:${join(dir, "tokens.enc")}` },
      { name: "sqlite again", env: { STORE: "sqlite", SQLITE_PATH: join(dir, "last.db") }, store: `sqlite:${join(dir, "last.db")}` }
    ] as const
    // One issuer for every hop (same port), one key (the lookup-hash key derives from it).
    const common = { RS_TOKENS_ENC_KEY: key, DEV_AUTO_APPROVE: "alice", ACCESS_TOKEN_TTL: String(TTL_SECONDS), PORT: String(port), DATA_DIR: dir }
    const cliEnv = { RS_TOKENS_ENC_KEY: key, DATA_DIR: dir }

    const provider = new MemoryOAuthProvider()
    let server: ServerProcess = await startServer({ env: { ...common, ...hops[0].env } })
    const printed: Array<string> = []
    try {
      const { client, transport } = await authorizeAndConnect(server.url, provider, headless)
      const whoami = async () => {
        const result = await client.callTool({ name: "whoami", arguments: {} })
        expect(result.isError ?? false).toBe(false)
        return result.structuredContent as Record<string, unknown>
      }
      expect((await whoami())["subject"]).toBe("alice")
      const sessionId = transport.sessionId
      expect(sessionId).toBeDefined()
      const keysBefore = await kids(server.url)

      for (let hop = 1; hop < hops.length; hop++) {
        const from = hops[hop - 1]
        const to = hops[hop]
        if (from === undefined || to === undefined) throw new Error("no hop")
        expect(await server.stop("SIGTERM")).toBe(0)

        const run = await runCli(cli, ["migrate", "--from", from.store, "--to", to.store], { env: cliEnv })
        printed.push(run.stdout, run.stderr)
        expect(run.code, run.stderr).toBe(0)
        expect(run.stdout).toContain("verified: counts match")

        if (hop === 1) {
          // A second copy into the now non-empty target is refused without --force.
          const again = await runCli(cli, ["migrate", "--from", from.store, "--to", to.store], { env: cliEnv })
          expect(again.code).toBe(1)
          expect(again.stderr).toContain("refusing to write into it without --force")
        }

        server = await startServer({ env: { ...common, ...to.env } })
        expect(await kids(server.url)).toEqual(keysBefore)
        const refreshesBefore = provider.tokenHistory.length
        // The same client and session, served from the new backend.
        const me = await whoami()
        expect(me["subject"]).toBe("alice")
        expect(me["sessionId"]).toBe(sessionId)
        // Its access token expires: the SDK refreshes with the refresh token the previous backend issued.
        await sleep(TTL_SECONDS * 1000 + 1200)
        expect((await whoami())["sessionId"]).toBe(sessionId)
        expect(provider.tokenHistory.length, `refreshed on ${to.name}`).toBeGreaterThan(refreshesBefore)
      }
      await client.close()
    } finally {
      await server.stop()
    }
    const secrets = provider.tokenHistory.flatMap((t) => [t.access_token, t.refresh_token ?? ""]).filter((s) => s.length > 0)
    for (const text of printed) {
      for (const secret of [key, ...secrets]) expect(text.includes(secret)).toBe(false)
    }
  })
})
