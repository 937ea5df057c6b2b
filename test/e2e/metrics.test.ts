/**
 * `/metrics` on the server process over real HTTP: off by default (a 404);
 * `METRICS=on` serves it on the main port in the Prometheus text format,
 * and the counters move with the requests a client makes; `METRICS=<port>`
 * serves it on a port of its own only; a value it cannot use stops startup
 * with one line naming `METRICS`. A rate-limit refusal is counted under its
 * bucket.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import {
  authorizeHeadless,
  exchangeCodeRequest,
  initializeSession,
  refreshRequest,
  registerPublicClient,
  tokensOf
} from "../support/oauthFlow.ts"
import { parseScrape, sampleOf, scrape } from "../support/prometheus.ts"
import { freePort } from "../support/redisServer.ts"
import { type ServerProcess, startServer } from "../support/server.ts"

const servers: Array<ServerProcess> = []
/** The METRICS=on server (its describe starts it; the rate-limit test reuses it). */
let metricsOn: ServerProcess
const start = async (env: Record<string, string>) => {
  const server = await startServer({ env: { STORE: "memory", DEV_AUTO_APPROVE: "alice", ...env } })
  servers.push(server)
  return server
}
afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()))
}, 30_000)

describe("/metrics off by default", () => {
  let server: ServerProcess
  beforeAll(async () => {
    server = await start({})
  }, 60_000)

  it("answers a JSON 404, and the server serves as usual", async () => {
    const response = await fetch(`${server.url}/metrics`)
    expect(response.status).toBe(404)
    expect(await response.json()).toEqual({ error: "not_found", error_description: "no such endpoint" })
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })
})

describe("METRICS=on: /metrics on the main server", () => {
  let server: ServerProcess
  beforeAll(async () => {
    server = await start({ METRICS: "on", REGISTER_RATE_LIMIT: "3/1h" })
    metricsOn = server
  }, 60_000)

  it("is the Prometheus text format: HELP and TYPE per family, histograms with buckets, sum and count", async () => {
    const response = await fetch(`${server.url}/metrics`)
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8")
    expect(response.headers.get("cache-control")).toBe("no-store")
    const text = await response.text()
    const parsed = parseScrape(text)
    expect(parsed.types.get("mcp_store_operations_total")).toBe("counter")
    expect(parsed.types.get("mcp_store_operation_duration_seconds")).toBe("histogram")
    expect(parsed.types.get("mcp_oauth_tokens_issued_total")).toBe("counter")
    expect(text).toContain("# HELP mcp_store_operations_total Store operations called, by operation and backend\n")
    // The signing keys were loaded and written at startup, through the instrumented store.
    const get = { operation: "SigningKeyStore.get", backend: "memory" }
    expect(sampleOf(parsed, "mcp_store_operations_total", get)).toBeGreaterThanOrEqual(1)
    expect(sampleOf(parsed, "mcp_store_operation_duration_seconds_count", get)).toBe(sampleOf(parsed, "mcp_store_operations_total", get))
    expect(sampleOf(parsed, "mcp_store_operation_duration_seconds_bucket", { ...get, le: "+Inf" }))
      .toBe(sampleOf(parsed, "mcp_store_operations_total", get))
    expect(sampleOf(parsed, "mcp_store_operation_duration_seconds_sum", get)).toBeGreaterThan(0)
    // Outcome counters are there from the start, at 0.
    expect(parsed.samples.get("mcp_store_refresh_reuse_detections_total{backend=\"memory\"}")).toBe(0)
    expect(parsed.samples.get("mcp_oauth_tokens_issued_total{grant_type=\"refresh_token\",token=\"access\"}")).toBe(0)
  })

  it("moves with the requests: registrations, codes, tokens issued, refreshes, replays, sessions", async () => {
    const metricsUrl = `${server.url}/metrics`
    const before = await scrape(metricsUrl)
    const clientId = await registerPublicClient(server.url)
    const { code, verifier } = await authorizeHeadless(server.url, clientId)
    const tokens = tokensOf(await exchangeCodeRequest(server.url, clientId, code, verifier))
    // The same code again: refused, counted as a replay, and its grant revoked.
    expect((await exchangeCodeRequest(server.url, clientId, code, verifier)).status).toBe(400)
    const second = await authorizeHeadless(server.url, clientId)
    const fresh = tokensOf(await exchangeCodeRequest(server.url, clientId, second.code, second.verifier))
    tokensOf(await refreshRequest(server.url, clientId, fresh.refresh_token))
    await initializeSession(server.url, fresh.access_token)
    expect(tokens.access_token.length).toBeGreaterThan(0)
    const after = await scrape(metricsUrl)

    const moved = (name: string, labels: Record<string, string>) => sampleOf(after, name, labels) - sampleOf(before, name, labels)
    const op = (operation: string) => ({ operation, backend: "memory" })
    expect(moved("mcp_store_operations_total", op("ClientStore.register"))).toBe(1)
    expect(moved("mcp_store_operations_total", op("TokenStore.consumeCode"))).toBe(3)
    expect(moved("mcp_store_operations_total", op("TokenStore.rotateRefreshToken"))).toBe(1)
    expect(moved("mcp_store_operations_total", op("SessionStore.create"))).toBe(1)
    expect(moved("mcp_store_operation_duration_seconds_count", op("TokenStore.consumeCode"))).toBe(3)
    expect(moved("mcp_store_code_replays_total", { backend: "memory" })).toBe(1)
    expect(moved("mcp_oauth_tokens_issued_total", { grant_type: "authorization_code", token: "access" })).toBe(2)
    expect(moved("mcp_oauth_tokens_issued_total", { grant_type: "authorization_code", token: "refresh" })).toBe(2)
    expect(moved("mcp_oauth_tokens_issued_total", { grant_type: "refresh_token", token: "access" })).toBe(1)
    expect(moved("mcp_oauth_tokens_issued_total", { grant_type: "refresh_token", token: "refresh" })).toBe(1)
    // Nothing failed, and no label carries a token, a client id or a user.
    expect([...after.samples.keys()].filter((key) => key.startsWith("mcp_store_errors_total"))).toEqual([])
    const text = await (await fetch(metricsUrl)).text()
    for (const secret of [tokens.access_token, tokens.refresh_token, fresh.refresh_token, code, clientId, "alice"]) {
      expect(text.includes(secret)).toBe(false)
    }
  })
})

describe("METRICS=on: rate-limit refusals", () => {
  it("a registration refused by the per-address limit is counted under its bucket", async () => {
    const server = metricsOn
    const before = await scrape(`${server.url}/metrics`)
    const refusals = { backend: "memory", bucket: "register" }
    let refused = 0
    for (let i = 0; i < 5 && refused === 0; i++) {
      const response = await fetch(`${server.url}/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ redirect_uris: ["http://127.0.0.1:9/cb"], token_endpoint_auth_method: "none" })
      })
      await response.arrayBuffer()
      if (response.status === 429) refused++
    }
    expect(refused).toBe(1)
    const after = await scrape(`${server.url}/metrics`)
    expect(sampleOf(after, "mcp_store_rate_limit_refusals_total", refusals) - sampleOf(before, "mcp_store_rate_limit_refusals_total", refusals)).toBe(1)
    expect(sampleOf(after, "mcp_store_operations_total", { operation: "RateLimiter.consume", backend: "memory" }))
      .toBeGreaterThan(sampleOf(before, "mcp_store_operations_total", { operation: "RateLimiter.consume", backend: "memory" }))
  })
})

describe("METRICS=<port>: /metrics on a port of its own", () => {
  let server: ServerProcess
  let metricsPort: number
  beforeAll(async () => {
    metricsPort = await freePort()
    server = await start({ METRICS: String(metricsPort), API_KEYS: "bob=bob-key-0123456789abcdef" })
  }, 60_000)

  it("serves the metrics there only, and logs where", async () => {
    const own = await scrape(`http://127.0.0.1:${metricsPort}/metrics`)
    expect(own.types.get("mcp_store_operations_total")).toBe("counter")
    expect((await fetch(`http://127.0.0.1:${metricsPort}/token`)).status).toBe(404)
    expect((await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { method: "POST" })).status).toBe(404)
    expect((await fetch(`${server.url}/metrics`)).status).toBe(404)
    const line = server.lines().map((l) => JSON.parse(l) as { message: string; annotations: Record<string, unknown> })
      .find((l) => l.message === "metrics listening")
    expect(line?.annotations).toEqual({ address: `127.0.0.1:${metricsPort}`, path: "/metrics" })
  })
})

describe("METRICS refused", () => {
  const run = async (env: Record<string, string>) => {
    const port = await freePort()
    try {
      await promisify(execFile)(process.execPath, ["--import", "tsx", "src/main.ts"], {
        cwd: new URL("../..", import.meta.url).pathname,
        env: { ...process.env, STORE: "memory", PORT: String(port), ...env },
        timeout: 30_000
      })
      return { code: 0, stdout: "" }
    } catch (error) {
      const failed = error as { code: number; stdout: string }
      return { code: failed.code, stdout: failed.stdout }
    }
  }

  it("a value that is not off, on or a port: one line naming METRICS", async () => {
    const { code, stdout } = await run({ METRICS: "sometimes" })
    expect(code).toBe(1)
    const lines = stdout.trim().split("\n").map((l) => JSON.parse(l) as { message: string; logLevel: string })
    const errors = lines.filter((l) => l.logLevel === "ERROR")
    expect(errors.length).toBe(1)
    expect(errors[0]?.message).toMatch(/^invalid configuration: .*METRICS.*expected off, on or a port number/)
  }, 60_000)

  it("the main server's own port: one line naming METRICS", async () => {
    const port = await freePort()
    const { code, stdout } = await run({ METRICS: String(port), PORT: String(port) })
    expect(code).toBe(1)
    expect(stdout).toMatch(/invalid configuration: .*METRICS.*must differ from PORT/)
  }, 60_000)
})
