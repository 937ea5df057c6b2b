/**
 * The startup lines of the server process: a warning when `DEV_AUTO_APPROVE`
 * is on, when no `API_KEYS` are set in local mode, and when the upstream
 * issuer cannot be discovered (the server starts and serves regardless);
 * none of them when the settings are in order.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { createServer } from "node:http"
import { freePort } from "../support/redisServer.ts"
import { type ServerProcess, startServer } from "../support/server.ts"

const servers: Array<ServerProcess> = []
afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()))
}, 30_000)

interface LogLine {
  readonly message: string
  readonly logLevel: string
  readonly annotations: Record<string, unknown>
}

const start = async (env: Record<string, string>) => {
  const server = await startServer({ env: { STORE: "memory", ...env } })
  servers.push(server)
  return server
}

const logOf = (server: ServerProcess): Array<LogLine> => server.lines().map((line) => JSON.parse(line) as LogLine)
const warnings = (server: ServerProcess) => logOf(server).filter((line) => line.logLevel === "WARN")

/** Wait for a log line (the upstream probe runs beside startup), up to `ms`. */
const waitForLine = async (server: ServerProcess, test: (line: LogLine) => boolean, ms = 15_000) => {
  const deadline = Date.now() + ms
  for (;;) {
    const found = logOf(server).find(test)
    if (found !== undefined) return found
    if (Date.now() > deadline) throw new Error(`no such log line:\n${server.lines().join("\n")}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

describe("startup warnings", () => {
  it("DEV_AUTO_APPROVE on: a warning naming the user, before the server listens", async () => {
    const server = await start({ DEV_AUTO_APPROVE: "dev-user" })
    const lines = logOf(server)
    const warning = lines.findIndex((line) => line.logLevel === "WARN" && line.message.startsWith("DEV_AUTO_APPROVE is on"))
    expect(warning).toBeGreaterThanOrEqual(0)
    expect(lines[warning]?.annotations).toEqual({ user: "dev-user" })
    expect(warning).toBeLessThan(lines.findIndex((line) => line.message === "listening"))
    expect(warnings(server).map((w) => w.message)).toEqual([lines[warning]?.message])
  }, 60_000)

  it("local mode without API_KEYS: a warning that the consent page can only deny", async () => {
    const server = await start({})
    expect(warnings(server).map((w) => w.message)).toEqual([
      "no API_KEYS are set: nobody can sign in on the consent page, which can only deny"
    ])
  }, 60_000)

  it("API_KEYS set, no development switch: no warning", async () => {
    const server = await start({ API_KEYS: "carol=carol-key-0123456789abcdef" })
    expect(warnings(server)).toEqual([])
    expect(server.lines().join("\n").includes("carol-key-0123456789abcdef")).toBe(false)
  }, 60_000)

  it("an upstream issuer that cannot be discovered: a warning, and the server starts and serves", async () => {
    const closed = await freePort()
    const issuer = `http://127.0.0.1:${closed}`
    const server = await start({ UPSTREAM_ISSUER: issuer, UPSTREAM_CLIENT_ID: "our-client" })
    const warning = await waitForLine(server, (line) => line.logLevel === "WARN" && line.message.startsWith("the upstream issuer"))
    expect(warning.message).toBe("the upstream issuer cannot be discovered: sign-ins fail until it answers")
    expect(warning.annotations["issuer"]).toBe(issuer)
    expect(String(warning.annotations["detail"])).toMatch(/Unavailable/)
    expect((await fetch(`${server.url}/.well-known/oauth-authorization-server`)).status).toBe(200)
    // No API_KEYS warning in upstream mode: the upstream provider signs users in.
    expect(warnings(server).map((w) => w.message)).toEqual([warning.message])
  }, 60_000)

  it("an upstream issuer that never answers: the probe gives up after its timeout, the server serves meanwhile", async () => {
    // Accepts connections and never responds.
    const silent = createServer(() => {})
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve))
    const address = silent.address()
    if (address === null || typeof address === "string") throw new Error("no address")
    try {
      const server = await start({ UPSTREAM_ISSUER: `http://127.0.0.1:${address.port}`, UPSTREAM_CLIENT_ID: "our-client" })
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
      const warning = await waitForLine(server, (line) => line.logLevel === "WARN" && line.message.startsWith("the upstream issuer"))
      expect(warning.annotations["detail"]).toBe("no answer within 5s")
    } finally {
      silent.closeAllConnections()
      await new Promise<void>((resolve) => silent.close(() => resolve()))
    }
  }, 60_000)
})
