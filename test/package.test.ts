/**
 * The package as a user gets it: `npm pack`, the tarball installed into a
 * consumer project outside the repository with its peers at the versions our
 * ranges allow, then type-checked with an ordinary strict NodeNext tsconfig,
 * run under plain `node`, tested with @effect/vitest, and bundled for a Worker
 * that runs in workerd. The consumer's sources are `test/fixtures/consumer/`.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { execFile } from "node:child_process"
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { gzipSync } from "node:zlib"
import { Miniflare } from "miniflare"
import { generateKey } from "../src/layers/crypto/keyring.ts"
import { freePort } from "./support/redisServer.ts"
import { bundleForWorkers } from "./support/workerBundle.ts"

const run = promisify(execFile)
const root = fileURLToPath(new URL("..", import.meta.url))
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  readonly name: string
  readonly exports: Record<string, string | { readonly types: string; readonly import: string }>
  readonly peerDependencies: Record<string, string>
  readonly peerDependenciesMeta: Record<string, { readonly optional?: boolean }>
}

/** The peers the consumer's programs use: every required one, and the SQLite driver's optional ones. */
const consumerPeers = Object.entries(manifest.peerDependencies)
  .filter(([name]) => manifest.peerDependenciesMeta[name]?.optional !== true || /^(@effect\/sql|better-sqlite3)$/.test(name))
  .map(([name, range]) => `${name}@${range}`)

interface PackedFile {
  readonly path: string
  readonly size: number
}

let work: string
let app: string
let packed: { readonly filename: string; readonly size: number; readonly entryCount: number; readonly files: ReadonlyArray<PackedFile> }

const inApp = (command: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  run(command, [...args], { cwd: app, env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024 })

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "mcp-oauth-store-consumer-"))
  const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", work], {
    cwd: root,
    maxBuffer: 16 * 1024 * 1024
  })
  // `npm pack` runs `prepack` (the build) first, whose output precedes the JSON.
  packed = JSON.parse(stdout.slice(stdout.indexOf("[")))[0]
  app = join(work, "app")
  cpSync(join(root, "test/fixtures/consumer"), app, { recursive: true })
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }, null, 2))
  await inApp("npm", [
    "install",
    "--no-audit",
    "--no-fund",
    "--prefer-offline",
    join(work, packed.filename),
    ...consumerPeers,
    "@effect/vitest@0.30.0",
    "vitest@3.2.7"
  ])
}, 900_000)

afterAll(() => {
  if (work !== undefined) rmSync(work, { recursive: true, force: true })
})

describe("the published package, in a consumer project", () => {
  it("the tarball holds the build, README, LICENSE and package.json, and every export's files", () => {
    const paths = packed.files.map((file) => file.path)
    expect(paths).toContain("LICENSE")
    expect(paths).toContain("README.md")
    expect(paths).toContain("package.json")
    const stray = paths.filter((path) => !/^(dist\/|README\.md$|LICENSE$|package\.json$)/.test(path))
    expect(stray).toEqual([])
    expect(paths.filter((path) => /(^|\/)(test|bench|data|examples)\/|\.(db|key|enc|tsbuildinfo)$/.test(path))).toEqual([])
    for (const [subpath, target] of Object.entries(manifest.exports)) {
      if (typeof target === "string") continue
      expect(paths, subpath).toContain(target.import.replace(/^\.\//, ""))
      expect(paths, subpath).toContain(target.types.replace(/^\.\//, ""))
    }
    console.info(`tarball ${packed.filename}: ${packed.size} bytes, ${packed.entryCount} files`)
  })

  it("type-checks with an ordinary strict NodeNext tsconfig, and runs under plain node across two runs", async () => {
    // The repository's own TypeScript, on the consumer's tsconfig (no allowImportingTsExtensions).
    const tsc = join(root, "node_modules/typescript/bin/tsc")
    await inApp(process.execPath, [tsc, "-p", "tsconfig.json"])
    expect(existsSync(join(app, "dist/main.js"))).toBe(true)

    const env = {
      SQLITE_PATH: join(work, "store.db"),
      RS_TOKENS_ENC_KEY: Redacted.value(Effect.runSync(generateKey))
    }
    const first = await inApp(process.execPath, ["dist/main.js"], { ...env, MODE: "write" })
    const { wrote } = JSON.parse(first.stdout) as { wrote: string }
    const second = await inApp(process.execPath, ["dist/main.js"], { ...env, MODE: "read" })
    expect(JSON.parse(second.stdout)).toEqual({ grant: "alice", refreshGrant: "grant-1", sessions: [wrote] })
  })

  it("an @effect/vitest test in the consumer swaps in the memory layer and moves TestClock past a TTL", async () => {
    const { stdout } = await inApp(join(app, "node_modules/.bin/vitest"), ["run", "src/ttl.spec.ts"])
    expect(stdout).toMatch(/1 passed/)
  })

  it("a Worker on the kv and crypto/web subpaths bundles with no Node built-in and answers in workerd", async () => {
    const built = await bundleForWorkers(join(app, "src/worker.ts"), app)
    const script = built.outputFiles[0]?.text ?? ""
    const bytes = new TextEncoder().encode(script)
    console.info(`consumer Worker bundle: ${bytes.length} bytes, ${gzipSync(bytes).length} gzipped`)
    const mf = new Miniflare({
      modules: true,
      script,
      compatibilityDate: "2025-01-01",
      kvNamespaces: ["TOKENS"],
      bindings: { RS_TOKENS_ENC_KEY: Redacted.value(Effect.runSync(generateKey)) }
    })
    try {
      expect((await mf.dispatchFetch("http://worker.test/codes/the-code", { method: "POST" })).status).toBe(201)
      const consumed = await mf.dispatchFetch("http://worker.test/codes/the-code/consume", { method: "POST" })
      expect(await consumed.json()).toMatchObject({ _tag: "Consumed" })
      const replayed = await mf.dispatchFetch("http://worker.test/codes/the-code/consume", { method: "POST" })
      expect(await replayed.json()).toEqual({ _tag: "Replayed", grantId: "grant-1" })
    } finally {
      await mf.dispose()
    }
  })

  it("the server as a Worker written by hand (server, durable, crypto/web) bundles with no Node built-in and serves in workerd", async () => {
    const built = await bundleForWorkers(join(app, "src/mcpWorker.ts"), app)
    const script = built.outputFiles[0]?.text ?? ""
    const bytes = new TextEncoder().encode(script)
    console.info(`consumer server Worker bundle: ${bytes.length} bytes, ${gzipSync(bytes).length} gzipped`)
    // On a loopback port, so the Worker sees the Host its PUBLIC_URL names (Miniflare's dispatchFetch rewrites it).
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const mf = new Miniflare({
      modules: true,
      script,
      compatibilityDate: "2025-01-01",
      host: "127.0.0.1",
      port,
      durableObjects: { STORE: { className: "StoreObject", useSQLite: true } },
      bindings: { PUBLIC_URL: url, RS_TOKENS_ENC_KEY: Redacted.value(Effect.runSync(generateKey)) }
    })
    try {
      await mf.ready
      const metadata = await fetch(`${url}/.well-known/oauth-authorization-server`)
      expect(await metadata.json()).toMatchObject({ issuer: url, scopes_supported: ["mcp:tools"] })
      const jwks = await (await fetch(`${url}/.well-known/jwks.json`)).json() as { keys: Array<unknown> }
      expect(jwks.keys.length).toBeGreaterThan(0)
      const registered = await fetch(`${url}/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ redirect_uris: ["https://app.example/callback"], token_endpoint_auth_method: "none" })
      })
      expect(registered.status).toBe(201)
      const refused = await fetch(`${url}/mcp`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" })
      })
      expect(refused.status).toBe(401)
      expect(refused.headers.get("www-authenticate")).toContain("resource_metadata=")
    } finally {
      await mf.dispose()
    }
  })
})
