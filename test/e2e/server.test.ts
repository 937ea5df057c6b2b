/**
 * The server process on the wire: discovery documents, OAuth error responses
 * for malformed or unsupported requests (never a 500 or a stack trace), the
 * body size limit, the resource challenge, structured request logs, startup
 * refusals that name the variable, and a clean SIGTERM.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { request } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { type ServerProcess, startServer } from "../support/server.ts"

let server: ServerProcess
beforeAll(async () => {
  server = await startServer({ env: { STORE: "memory", DEV_AUTO_APPROVE: "alice", MAX_BODY_BYTES: "4096" } })
}, 60_000)
afterAll(async () => {
  await server.stop()
})

const post = (path: string, body: string, contentType: string, headers: Record<string, string> = {}) =>
  fetch(`${server.url}${path}`, { method: "POST", body, headers: { "content-type": contentType, ...headers } })

const expectOAuthError = async (response: Response, status: number, error: string) => {
  expect(response.status).toBe(status)
  expect(response.headers.get("content-type")).toMatch(/^application\/json/)
  const body = await response.json() as Record<string, unknown>
  expect(body["error"]).toBe(error)
  expect(JSON.stringify(body)).not.toMatch(/at .*\.ts:\d+|Error:/)
  return body
}

describe("the server on the wire", () => {
  it("publishes RFC 8414 and RFC 9728 metadata and the JWKS", async () => {
    const as = await (await fetch(`${server.url}/.well-known/oauth-authorization-server`)).json() as Record<string, unknown>
    expect(as).toMatchObject({
      issuer: server.url,
      token_endpoint: `${server.url}/token`,
      registration_endpoint: `${server.url}/register`,
      code_challenge_methods_supported: ["S256"]
    })
    const pr = await (await fetch(`${server.url}/.well-known/oauth-protected-resource/mcp`)).json() as Record<string, unknown>
    expect(pr).toMatchObject({ resource: `${server.url}/mcp`, authorization_servers: [server.url] })
    const root = await (await fetch(`${server.url}/.well-known/oauth-protected-resource`)).json() as Record<string, unknown>
    expect(root["resource"]).toBe(server.url)
    const jwks = await (await fetch(`${server.url}/.well-known/jwks.json`)).json() as { keys: Array<Record<string, unknown>> }
    expect(jwks.keys.length).toBeGreaterThan(0)
    for (const key of jwks.keys) expect(key["d"]).toBeUndefined()
  })

  it("answers /mcp without a bearer with 401 and the resource metadata challenge", async () => {
    const response = await post("/mcp", "{}", "application/json")
    expect(response.status).toBe(401)
    const params = `resource_metadata="${server.url}/.well-known/oauth-protected-resource/mcp", scope="mcp:tools"`
    expect(response.headers.get("www-authenticate")).toBe(`Bearer ${params}, DPoP ${params}, algs="ES256 ES384 ES512 RS256 RS384 RS512 PS256 PS384 PS512 EdDSA Ed25519"`)
  })

  it("refuses malformed and unsupported requests with OAuth errors", async () => {
    await expectOAuthError(await post("/register", "{not json", "application/json"), 400, "invalid_request")
    await expectOAuthError(await post("/register", "redirect_uris=x", "application/x-www-form-urlencoded"), 400, "invalid_request")
    await expectOAuthError(
      await post("/register", JSON.stringify({ redirect_uris: ["http://evil.example/cb"] }), "application/json"),
      400,
      "invalid_redirect_uri"
    )
    await expectOAuthError(await post("/token", "{}", "application/json"), 400, "invalid_request")
    await expectOAuthError(
      await post("/token", "grant_type=authorization_code&client_id=x", "application/x-www-form-urlencoded"),
      401,
      "invalid_client"
    )
    await expectOAuthError(
      await post("/token", "grant_type=a&grant_type=b", "application/x-www-form-urlencoded"),
      400,
      "invalid_request"
    )
    const basic = await post("/token", "grant_type=authorization_code", "application/x-www-form-urlencoded", {
      authorization: `Basic ${Buffer.from("nobody:wrong").toString("base64")}`
    })
    await expectOAuthError(basic, 401, "invalid_client")
    expect(basic.headers.get("www-authenticate")).toMatch(/^Basic/)
    const page = await fetch(`${server.url}/authorize?client_id=unknown&response_type=code`)
    expect(page.status).toBe(400)
    expect(page.headers.get("content-type")).toMatch(/^text\/html/)
  })

  it("answers an unsupported grant type of a known client with unsupported_grant_type", async () => {
    const registered = await post("/register", JSON.stringify({
      redirect_uris: ["http://127.0.0.1:9/cb"],
      token_endpoint_auth_method: "none"
    }), "application/json")
    expect(registered.status).toBe(201)
    const client = await registered.json() as { client_id: string }
    await expectOAuthError(
      await post("/token", `grant_type=password&client_id=${client.client_id}`, "application/x-www-form-urlencoded"),
      400,
      "unsupported_grant_type"
    )
  })

  it("limits the request body", async () => {
    const response = await post("/register", JSON.stringify({ client_name: "x".repeat(8000) }), "application/json")
    await expectOAuthError(response, 413, "invalid_request")
  })

  it("walks the README's curl walkthrough to a first authorized tool call", () => {
    const output = execFileSync("bash", ["examples/first-tool-call.sh", server.url], { encoding: "utf8", timeout: 30_000 })
    const reply = JSON.parse(output) as { result: { structuredContent: Record<string, unknown> } }
    expect(reply.result.structuredContent).toMatchObject({ subject: "alice", scopes: ["mcp:tools"] })
  })

  it("answers CORS for discovery, registration and token, and not for /authorize or /mcp", async () => {
    const pre = await fetch(`${server.url}/token`, {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": "content-type" }
    })
    expect(pre.status).toBe(204)
    expect(pre.headers.get("access-control-allow-origin")).toBe("*")
    expect(pre.headers.get("access-control-allow-headers")).toContain("content-type")
    const refused = await post("/token", "grant_type=authorization_code", "application/x-www-form-urlencoded", { origin: "https://app.example" })
    expect(refused.headers.get("access-control-allow-origin")).toBe("*")
    const metadata = await fetch(`${server.url}/.well-known/oauth-authorization-server`, { headers: { origin: "https://app.example" } })
    expect(metadata.headers.get("access-control-allow-origin")).toBe("*")
    expect((await fetch(`${server.url}/authorize`, { method: "OPTIONS" })).status).toBe(404)
    const mcp = await post("/mcp", "{}", "application/json", { origin: "https://app.example" })
    expect(mcp.headers.get("access-control-allow-origin")).toBeNull()
  })

  it("answers unknown routes with a JSON 404", async () => {
    const response = await fetch(`${server.url}/nope`)
    expect(response.status).toBe(404)
    expect(await response.json()).toMatchObject({ error: "not_found" })
  })

  it("logs each request as a JSON line with method, path and status, never the query", async () => {
    await fetch(`${server.url}/authorize?client_id=logged&state=secret-state-value`)
    await sleep(200) // the line is written once the response is on its way
    const lines = server.lines().map((l) => JSON.parse(l) as { message: string; annotations: Record<string, unknown> })
    const request = lines.find((l) => l.message === "request" && l.annotations["path"] === "/authorize")
    expect(request?.annotations).toMatchObject({ method: "GET", path: "/authorize", status: 400 })
    expect(server.lines().some((l) => l.includes("secret-state-value"))).toBe(false)
  })
})

describe("the encrypted file store", () => {
  it("serves the walkthrough and keeps only sealed data on disk", { timeout: 60_000 }, async () => {
    const running = await startServer({ env: { STORE: "file", DEV_AUTO_APPROVE: "alice" } })
    try {
      const output = execFileSync("bash", ["examples/first-tool-call.sh", running.url], { encoding: "utf8", timeout: 30_000 })
      expect(output).toContain("\"subject\":\"alice\"")
    } finally {
      expect(await running.stop()).toBe(0)
    }
    const file = readFileSync(join(running.dataDir, "tokens.enc"), "utf8")
    expect(file).not.toContain("alice")
  })
})

describe("startup and shutdown", () => {
  it.each([
    [{ PORT: "abc" }, "PORT"],
    [{ STORE: "mongodb" }, "STORE"],
    [{ API_KEYS: "alice=short" }, "API_KEYS"],
    [{ HOST: "0.0.0.0", DEV_AUTO_APPROVE: "alice", PUBLIC_URL: "https://mcp.example.com" }, "DEV_AUTO_APPROVE"],
    [{ STORE: "redis" }, "RS_TOKENS_ENC_KEY"],
    [{ RS_TOKENS_ENC_KEY: "not-a-key" }, "RS_TOKENS_ENC_KEY"],
    [{ LOG_LEVEL: "loud" }, "LOG_LEVEL"],
    [{ TRUST_PROXY: "proxy.example" }, "TRUST_PROXY"]
  ])("refuses %j with one line naming %s", { timeout: 60_000 }, async (env, variable) => {
    const failed = await startServer({ env }).then(() => undefined, (error: Error) => error.message)
    expect(failed).toMatch(/exited with 1 before listening/)
    const errors = (failed ?? "").split("\n").filter((l) => l.includes("\"logLevel\":\"ERROR\""))
    expect(errors).toHaveLength(1)
    expect(errors[0]).toContain(variable)
    expect(errors[0]).not.toContain("not-a-key")
  })

  it("refuses a corrupt SQLite file and a wrong key for an existing store, touching neither", { timeout: 90_000 }, async () => {
    const corruptDir = mkdtempSync(join(tmpdir(), "mcp-corrupt-"))
    writeFileSync(join(corruptDir, "store.db"), "this is not a database, and it must still be here afterwards")
    const corrupt = await startServer({ env: { STORE: "sqlite", DATA_DIR: corruptDir } }).then(() => "", (error: Error) => error.message)
    expect(corrupt).toMatch(/exited with 1 before listening/)
    expect(corrupt).toMatch(/the store could not be opened: StoreError reason=Corrupt/)
    expect(readFileSync(join(corruptDir, "store.db"), "utf8")).toBe("this is not a database, and it must still be here afterwards")

    const first = await startServer({ env: { STORE: "sqlite" } })
    expect(await first.stop()).toBe(0)
    const before = readFileSync(join(first.dataDir, "store.db"))
    const otherKey = randomBytes(32).toString("base64url")
    const wrongKey = await startServer({ env: { STORE: "sqlite", DATA_DIR: first.dataDir, RS_TOKENS_ENC_KEY: otherKey } })
      .then(() => "", (error: Error) => error.message)
    expect(wrongKey).toMatch(/the store could not be opened: StoreError reason=DecryptFailed/)
    expect(wrongKey).not.toContain(otherKey)
    expect(readFileSync(join(first.dataDir, "store.db")).equals(before)).toBe(true)
  })

  it("finishes a request in flight when SIGTERM arrives, then exits 0", { timeout: 60_000 }, async () => {
    const running = await startServer({ env: { STORE: "memory" } })
    const body = JSON.stringify({ client_name: "in flight", redirect_uris: ["http://127.0.0.1:9/cb"], token_endpoint_auth_method: "none" })
    const reply = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${running.url}/register`, {
        method: "POST",
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) }
      }, (res) => {
        let text = ""
        res.on("data", (chunk: Buffer) => text += chunk.toString("utf8"))
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }))
      })
      req.on("error", reject)
      // Half the body now: the request is in flight, its handler waiting for the rest.
      req.write(body.slice(0, 20))
      void sleep(500).then(() => {
        const stopped = running.stop("SIGTERM")
        void sleep(700).then(() => req.end(body.slice(20)))
        return stopped
      })
    })
    const answered = await reply
    expect(answered.status).toBe(201)
    expect(JSON.parse(answered.body)).toMatchObject({ client_name: "in flight" })
    expect(await running.exited).toBe(0)
    const messages = running.lines().map((l) => (JSON.parse(l) as { message: string }).message)
    expect(messages.indexOf("shutting down: finishing in-flight requests")).toBeLessThan(messages.lastIndexOf("request"))
    expect(messages.at(-1)).toBe("stopped")
  })

  it("stops on SIGTERM: logs shutdown, exits 0", { timeout: 60_000 }, async () => {
    const running = await startServer({ env: { STORE: "memory" } })
    expect(await running.stop("SIGTERM")).toBe(0)
    const messages = running.lines().map((l) => (JSON.parse(l) as { message: string }).message)
    expect(messages).toContain("shutting down: finishing in-flight requests")
    expect(messages.at(-1)).toBe("stopped")
  })
})
