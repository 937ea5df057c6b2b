import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { Miniflare } from "miniflare"
import { generateKey } from "../src/layers/crypto/keyring.ts"
import { bundleForWorkers as bundle } from "./support/workerBundle.ts"

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))

let mf: Miniflare
let bundleBytes = 0

beforeAll(async () => {
  const built = await bundle(here("./fixtures/worker.ts"))
  const script = built.outputFiles[0]?.text ?? ""
  bundleBytes = new TextEncoder().encode(script).length
  const activeKey = Redacted.value(Effect.runSync(generateKey))
  mf = new Miniflare({
    modules: true,
    script,
    compatibilityDate: "2025-01-01",
    kvNamespaces: ["TOKENS"],
    bindings: { RS_TOKENS_ENC_KEY: activeKey }
  })
  await mf.ready
})

afterAll(async () => {
  await mf?.dispose()
})

const call = async (method: "GET" | "POST", path: string, body?: Record<string, string>) => {
  const response = await mf.dispatchFetch(`http://worker.test${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } })
  })
  return { status: response.status, body: await response.json() as Record<string, unknown> }
}

describe("kv on the Workers runtime (Miniflare's workerd)", () => {
  it("the Worker bundle has no Node built-in, and the guard does catch one", async () => {
    // Effect is most of it (~450 KB minified, ~145 KB gzipped when measured); Workers accept 3 MB compressed.
    expect(bundleBytes).toBeGreaterThan(0)
    expect(bundleBytes).toBeLessThan(1_000_000)
    // The node:crypto layer: bundling it for Workers must fail.
    await expect(bundle(here("../src/exports/crypto/node.ts"))).rejects.toThrow(/node:crypto/)
  })

  it("save, read, consume twice (Consumed then Replayed), create and read a session", async () => {
    const saved = await call("POST", "/transactions", { id: "tx-1" })
    expect(saved.status).toBe(201)
    const read = await call("GET", "/transactions/tx-1")
    expect(read).toMatchObject({ status: 200, body: { id: "tx-1", clientId: "client-1" } })
    expect((await call("GET", "/transactions/nope")).status).toBe(404)

    expect((await call("POST", "/codes", { code: "the-code", grantId: "g1" })).status).toBe(201)
    expect((await call("POST", "/codes/consume", { code: "the-code" })).body).toMatchObject({ _tag: "Consumed" })
    expect((await call("POST", "/codes/consume", { code: "the-code" })).body).toEqual({ _tag: "Replayed", grantId: "g1" })

    const created = await call("POST", "/sessions", { apiKey: "alice-api-key" })
    expect(created.status).toBe(201)
    const session = created.body["session"] as { id: string; apiKeyHash: string }
    expect(session.apiKeyHash).not.toContain("alice")
    const again = await call("GET", `/sessions/${session.id}`)
    expect(again).toMatchObject({ status: 200, body: { id: session.id } })

    // What the Worker wrote is in KV, sealed: keys hold hashes, values are envelopes.
    const kv = await mf.getKVNamespace("TOKENS")
    const names = (await kv.list()).keys.map((k) => k.name)
    expect(names).toContain("pending:tx-1")
    expect(names.some((n) => n.startsWith("code:"))).toBe(true)
    expect(names).toContain(`session:${session.id}`)
    expect(names.join(" ")).not.toContain("the-code")
    const stored = await kv.get("pending:tx-1")
    expect(stored).not.toContain("client-1")
  })
})
