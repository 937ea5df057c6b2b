/**
 * The server as a Cloudflare Worker, in workerd through Miniflare: the
 * repository's Worker (`src/worker/main.ts`, bundled with esbuild as
 * `wrangler deploy` would, with no Node built-in), its Durable Object binding
 * and vars as `wrangler.toml` declares them, serving on a loopback port so
 * the MCP SDK clients reach it with their own `fetch`:
 * - the 1.32.2 client: 401 -> discovery -> registration -> PKCE -> token ->
 *   tools/call; a refresh by itself when the access token expires;
 * - Miniflare restarted on its persisted storage: the same signing keys, the
 *   same session, the refresh token issued before the restart still rotates;
 * - reuse detection: an old refresh token replayed revokes the grant, and the
 *   next call is refused with 401;
 * - the 2.4.0 client in `auto` mode reaching the 2026-07-28 era, including a
 *   multi-round tool; the same client with a DPoP key (nonces required), its
 *   proofs' `jti`s in the Durable Objects' ReplayCache;
 * - the runtime built once per isolate, nothing secret in its logs;
 * - KV alone (`STORE=kv`), the weaker option, serving the same flow;
 * - settings that cannot be used answer 500 and name the variable in the log.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Readable } from "node:stream"
import { setTimeout as sleep } from "node:timers/promises"
import { fileURLToPath } from "node:url"
import { gzipSync } from "node:zlib"
import { Effect, Redacted } from "effect"
import { Miniflare } from "miniflare"
import { generateKey } from "../../src/layers/crypto/keyring.ts"
import { authorizeAndConnect, headless, MemoryOAuthProvider } from "../support/mcpClient.ts"
import { DpopSession } from "@modelcontextprotocol/client"
import { authorizeAndConnect2, MemoryOAuthProvider2 } from "../support/mcpClient2026.ts"
import { refreshRequest } from "../support/oauthFlow.ts"
import { freePort } from "../support/redisServer.ts"
import { workerScript } from "../support/workerBundle.ts"
import { wranglerTemplate } from "../support/wrangler.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))
const TTL_SECONDS = 2

/** A Miniflare running the Worker on `port`, its workerd output kept. */
interface Running {
  readonly mf: Miniflare
  readonly url: string
  readonly output: () => string
}

const template = wranglerTemplate(readFileSync(join(root, "wrangler.toml"), "utf8"))
let script: string
let flakyScript: string
const dirs: Array<string> = []
const running: Array<Miniflare> = []

const start = async (options: {
  readonly port: number
  readonly bindings: Record<string, string>
  readonly persist?: string
  readonly kv?: boolean
  readonly script?: string
}): Promise<Running> => {
  let output = ""
  const collect = (stream: Readable) => stream.on("data", (chunk: Buffer) => void (output += chunk.toString("utf8")))
  const mf = new Miniflare({
    modules: true,
    script: options.script ?? script,
    compatibilityDate: template.compatibilityDate,
    host: "127.0.0.1",
    port: options.port,
    durableObjects: { [template.binding]: { className: template.className, useSQLite: true } },
    ...(options.persist === undefined ? {} : { durableObjectsPersist: options.persist, kvPersist: options.persist }),
    ...(options.kv === true ? { kvNamespaces: ["TOKENS"] } : {}),
    bindings: { ...template.vars, ...options.bindings },
    handleRuntimeStdio: (stdout: Readable, stderr: Readable) => {
      collect(stdout)
      collect(stderr)
    }
  })
  running.push(mf)
  const url = (await mf.ready).toString().replace(/\/$/, "")
  return { mf, url, output: () => output }
}

const stop = async (instance: Running) => {
  await instance.mf.dispose()
  running.splice(running.indexOf(instance.mf), 1)
}

const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "mcp-worker-test-"))
  dirs.push(dir)
  return dir
}

/** The key ids the Worker publishes. */
const kids = async (url: string) => {
  const jwks = await (await fetch(`${url}/.well-known/jwks.json`)).json() as { keys: Array<{ kid: string }> }
  return jwks.keys.map((k) => k.kid).sort()
}

type Connected = Awaited<ReturnType<typeof authorizeAndConnect>>

const whoami = async (client: Connected["client"]) => {
  const result = await client.callTool({ name: "whoami", arguments: {} })
  expect(result.isError ?? false).toBe(false)
  return result.structuredContent as Record<string, unknown>
}

/** JSON log lines of the Worker (workerd also prints its own lines, which are not JSON). */
const logLines = (output: string) =>
  output.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line) as Record<string, unknown>)

beforeAll(async () => {
  script = await workerScript(join(root, template.main))
  const bytes = new TextEncoder().encode(script)
  console.info(`the Worker's bundle (${template.main}): ${bytes.length} bytes minified, ${gzipSync(bytes).length} gzipped`)
  flakyScript = await workerScript(join(root, "test/fixtures/flakyWorker.ts"))
}, 60_000)

afterAll(async () => {
  for (const mf of running) await mf.dispose()
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

describe("the server as a Worker in workerd (Miniflare), on Durable Objects", () => {
  it("wrangler.toml binds STORE to StoreObject on SQLite storage; its main bundles with no Node built-in", () => {
    expect(template.main).toBe("src/worker/main.ts")
    expect(template.binding).toBe("STORE")
    expect(template.className).toBe("StoreObject")
    expect(template.sqliteClasses).toEqual(["StoreObject"])
    // workerd refuses a Worker whose main module does not export the bound class: every test below starts it.
    expect(script).toMatch(/export\s*\{[^}]*\bStoreObject\b/)
    expect(template.vars["PUBLIC_URL"]).toMatch(/^https:\/\//)
    // No secret in the template: they are `wrangler secret put`.
    expect(Object.keys(template.vars).filter((name) => /KEY|SECRET/.test(name))).toEqual([])
  })

  it("the SDK client's whole flow, a refresh, a restart on persisted storage, then reuse detection revokes the grant", { timeout: 120_000 }, async () => {
    const persist = tempDir()
    const port = await freePort()
    const key = Redacted.value(Effect.runSync(generateKey))
    const bindings = {
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      RS_TOKENS_ENC_KEY: key,
      DEV_AUTO_APPROVE: "alice",
      ACCESS_TOKEN_TTL: String(TTL_SECONDS)
    }
    const first = await start({ port, bindings, persist })
    expect(first.url).toBe(bindings.PUBLIC_URL)

    // 401 -> discovery -> registration -> PKCE -> token -> initialize -> tools.
    const provider = new MemoryOAuthProvider()
    const { client, transport } = await authorizeAndConnect(first.url, provider, headless)
    expect(transport.sessionId).toBeDefined()
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(["greet", "whoami"])
    const me = await whoami(client)
    expect(me).toMatchObject({ subject: "alice", sessionId: transport.sessionId })
    expect(provider.client?.client_id).toBeDefined()

    // The access token expires; the next call meets 401 and the SDK refreshes on its own.
    await sleep(TTL_SECONDS * 1000 + 1200)
    expect((await whoami(client))["subject"]).toBe("alice")
    expect(provider.tokenHistory).toHaveLength(2)
    const [issued, refreshed] = provider.tokenHistory
    expect(refreshed?.refresh_token).toBeDefined()
    expect(refreshed?.refresh_token).not.toBe(issued?.refresh_token)

    // One runtime for every request so far: built by the first request, kept by the isolate.
    expect(logLines(first.output()).filter((line) => line["message"] === "stores ready")).toHaveLength(1)
    const keysBefore = await kids(first.url)
    expect(keysBefore.length).toBeGreaterThanOrEqual(1)
    await stop(first)

    // A new workerd on the same storage: the same keys, the same session, the refresh token issued before still rotates.
    const second = await start({ port, bindings, persist })
    expect(await kids(second.url)).toEqual(keysBefore)
    await sleep(TTL_SECONDS * 1000 + 1200)
    const after = await whoami(client)
    expect(after).toMatchObject({ subject: "alice", sessionId: transport.sessionId })
    expect(provider.tokenHistory).toHaveLength(3)
    expect(provider.tokenHistory[2]?.refresh_token).not.toBe(refreshed?.refresh_token)

    // Reuse detection: the first refresh token (rotated twice since) is replayed: the grant is revoked.
    const clientId = provider.client?.client_id ?? ""
    const replay = await refreshRequest(second.url, clientId, issued?.refresh_token ?? "")
    expect(replay.status).toBe(400)
    expect(JSON.parse(replay.body)).toMatchObject({ error: "invalid_grant" })
    // The current access token now fails: 401 at /mcp (and the SDK cannot refresh either: its refresh token went with the grant).
    const current = provider.tokens()?.access_token ?? ""
    const refused = await fetch(`${second.url}/mcp`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${current}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-session-id": transport.sessionId ?? "",
        "mcp-protocol-version": "2025-06-18"
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/call", params: { name: "whoami", arguments: {} } })
    })
    expect(refused.status).toBe(401)
    expect(refused.headers.get("www-authenticate")).toContain("invalid_token")
    await expect(client.callTool({ name: "whoami", arguments: {} })).rejects.toThrow()
    const again = await refreshRequest(second.url, clientId, provider.tokenHistory[2]?.refresh_token ?? "")
    expect(again.status).toBe(400)

    // Nothing secret in the Worker's logs: no token, no key.
    const logs = first.output() + second.output()
    const secrets = [key, ...provider.tokenHistory.flatMap((t) => [t.access_token, t.refresh_token ?? ""])].filter((s) => s.length > 0)
    for (const secret of secrets) expect(logs.includes(secret)).toBe(false)
    expect(logLines(second.output()).some((line) => line["message"] === "stores ready")).toBe(true)
    await client.close().catch(() => undefined)
    await stop(second)
  })

  it("the 2.4.0 client in auto mode reaches the 2026-07-28 era and completes a multi-round tool", { timeout: 60_000 }, async () => {
    const port = await freePort()
    const worker = await start({
      port,
      bindings: { PUBLIC_URL: `http://127.0.0.1:${port}`, RS_TOKENS_ENC_KEY: Redacted.value(Effect.runSync(generateKey)), DEV_AUTO_APPROVE: "alice" }
    })
    const provider = new MemoryOAuthProvider2()
    const asked: Array<Record<string, unknown>> = []
    const { client, transport } = await authorizeAndConnect2(worker.url, provider, headless, "auto", (params) => {
      asked.push(params)
      return { name: "Ada" }
    })
    expect(client.getProtocolEra()).toBe("modern")
    expect(client.getNegotiatedProtocolVersion()).toBe("2026-07-28")
    expect(transport.sessionId).toBeUndefined()
    const me = await client.callTool({ name: "whoami", arguments: {} })
    expect(me.structuredContent).toMatchObject({ subject: "alice", protocolVersion: "2026-07-28" })
    const greeting = await client.callTool({ name: "greet", arguments: {} })
    expect(greeting.content).toEqual([{ type: "text", text: "Hello, Ada!" }])
    expect(asked).toHaveLength(1)
    await client.close()
    await stop(worker)
  })

  it("DPoP on Durable Objects: the 2.4.0 client with a DpopSession (nonces on), its token refused as Bearer, a replayed proof refused", { timeout: 60_000 }, async () => {
    const port = await freePort()
    const worker = await start({
      port,
      bindings: {
        PUBLIC_URL: `http://127.0.0.1:${port}`,
        RS_TOKENS_ENC_KEY: Redacted.value(Effect.runSync(generateKey)),
        DEV_AUTO_APPROVE: "alice",
        DPOP_NONCE: "on"
      }
    })
    const session = await DpopSession.create()
    const provider = new (class extends MemoryOAuthProvider2 {
      dpop() {
        return session
      }
    })()
    const { client } = await authorizeAndConnect2(worker.url, provider, headless, "auto")
    expect((await client.callTool({ name: "whoami", arguments: {} })).structuredContent).toMatchObject({ subject: "alice" })
    const tokens = provider.tokens()
    expect(tokens?.token_type).toBe("DPoP")
    const token = tokens?.access_token ?? ""
    const mcp = (headers: Record<string, string>) =>
      fetch(`${worker.url}/mcp`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json", ...headers },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "0" } } })
      })
    const asBearer = await mcp({ authorization: `Bearer ${token}` })
    expect(asBearer.status).toBe(401)
    expect(asBearer.headers.get("www-authenticate")).toContain("invalid_token")
    const proof = await session.buildProof({ htm: "POST", htu: `${worker.url}/mcp`, accessToken: token })
    expect((await mcp({ authorization: `DPoP ${token}`, dpop: proof })).status).toBe(200)
    const replayed = await mcp({ authorization: `DPoP ${token}`, dpop: proof })
    expect(replayed.status).toBe(401)
    expect(replayed.headers.get("www-authenticate")).toContain("invalid_dpop_proof")
    await client.close()
    await stop(worker)
  })

  it("settings that cannot be used: 500 server_error for every request, one log line naming the variable", { timeout: 60_000 }, async () => {
    const port = await freePort()
    // http on a host that is not loopback: not a public URL the server may publish.
    const worker = await start({ port, bindings: { PUBLIC_URL: "http://mcp.example.com", RS_TOKENS_ENC_KEY: Redacted.value(Effect.runSync(generateKey)) } })
    for (let i = 0; i < 2; i++) {
      const response = await fetch(`${worker.url}/.well-known/oauth-authorization-server`)
      expect(response.status).toBe(500)
      expect(await response.json()).toMatchObject({ error: "server_error" })
    }
    const lines = logLines(worker.output()).filter((line) => String(line["message"]).includes("invalid configuration"))
    expect(lines).toHaveLength(1)
    expect(String(lines[0]?.["message"])).toContain("PUBLIC_URL")
    await stop(worker)

    // An encryption key that does not decode: refused when the runtime is built, its value never logged.
    const badKey = "not-a-key-but-a-secret-looking-string"
    const second = await start({ port: await freePort(), bindings: { PUBLIC_URL: "http://127.0.0.1:1", RS_TOKENS_ENC_KEY: badKey } })
    const response = await fetch(`${second.url}/.well-known/oauth-authorization-server`)
    expect(response.status).toBe(500)
    expect(second.output()).toContain("RS_TOKENS_ENC_KEY")
    expect(second.output()).not.toContain(badKey)
    await stop(second)
  })
})

describe("the server as a Worker whose store fails while the runtime is built", () => {
  it("answers 503 temporarily_unavailable with Retry-After, logs the store's reason, and the next request builds it", { timeout: 60_000 }, async () => {
    const port = await freePort()
    const worker = await start({
      port,
      script: flakyScript,
      bindings: { PUBLIC_URL: `http://127.0.0.1:${port}`, RS_TOKENS_ENC_KEY: Redacted.value(Effect.runSync(generateKey)) }
    })
    const first = await fetch(`${worker.url}/.well-known/jwks.json`)
    expect(first.status).toBe(503)
    expect(first.headers.get("retry-after")).toBe("1")
    expect(await first.json()).toMatchObject({ error: "temporarily_unavailable" })
    const second = await fetch(`${worker.url}/.well-known/jwks.json`)
    expect(second.status).toBe(200)
    expect(((await second.json()) as { keys: Array<unknown> }).keys.length).toBeGreaterThan(0)
    const lines = logLines(worker.output())
    expect(lines.filter((line) => String(line["message"]).includes("the store failed (Unavailable) in SigningKeyStore.get"))).toHaveLength(1)
    expect(lines.filter((line) => line["message"] === "stores ready")).toHaveLength(2)
    await stop(worker)
  })
})

describe("the server as a Worker on KV alone (STORE=kv: no atomic single use, see README)", () => {
  it("serves the SDK client's whole flow and a refresh", { timeout: 60_000 }, async () => {
    const port = await freePort()
    const worker = await start({
      port,
      kv: true,
      bindings: {
        PUBLIC_URL: `http://127.0.0.1:${port}`,
        RS_TOKENS_ENC_KEY: Redacted.value(Effect.runSync(generateKey)),
        DEV_AUTO_APPROVE: "alice",
        STORE: "kv"
      }
    })
    const provider = new MemoryOAuthProvider()
    const { client } = await authorizeAndConnect(worker.url, provider, headless)
    expect((await whoami(client))["subject"]).toBe("alice")
    const issued = provider.tokenHistory[0]
    const rotated = await refreshRequest(worker.url, provider.client?.client_id ?? "", issued?.refresh_token ?? "")
    expect(rotated.status).toBe(200)
    await client.close()
    await stop(worker)
  })
})
