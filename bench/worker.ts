/**
 * The server as a Cloudflare Worker (`src/worker/main.ts`) in Miniflare's
 * workerd, beside a baseline Worker measured in the same run
 * (`bench/workerBaseline.ts`: Effect's platform answering one JSON route, no
 * store, no crypto):
 *
 * - the bundle, built as the tests build it (esbuild, minified, the `workerd`
 *   condition, no Node built-in), in bytes and gzipped, and what it is made of;
 * - the script's evaluation (parse, compile, top-level code) in a fresh V8:
 *   the bundle imported by a new Node process, `cloudflare:workers` stubbed
 *   (workerd's clock stands still while a script runs, so it cannot be timed
 *   there); this is the part of an isolate's start that the bundle decides;
 * - the cold start: a new workerd with the script (process start, ready),
 *   then the first request, which builds the runtime (settings, WebCrypto, the
 *   Durable Object stores, the signing keys: generated and stored on an empty
 *   store, read and imported when they are there), then the second request;
 *   interleaved rounds, each side on a fresh workerd;
 * - warm requests over a loopback port: the discovery document, and a
 *   2026-07-28 `tools/call` (JWT verification, the grant read from its
 *   Durable Object, the tool), each beside the baseline's route.
 *
 * Local workerd on this machine, not Cloudflare's edge: the figures compare
 * the two Workers, and say nothing about network latency.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { gzipSync } from "node:zlib"
import { Effect, Redacted } from "effect"
import { Miniflare } from "miniflare"
import * as esbuild from "esbuild"
import { generateKey } from "../src/layers/crypto/keyring.ts"
import { issueTokens } from "../test/support/oauthFlow.ts"
import { freePort } from "../test/support/redisServer.ts"
import { bundleForWorkers } from "../test/support/workerBundle.ts"
import { formatTable, median, register, type RunOptions, runCases } from "./harness.ts"

const COLD_ROUNDS = 5
const warmOptions: RunOptions = { rounds: 7, roundMs: 300, warmupMs: 300 }
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))

interface Bundle {
  readonly script: string
  readonly bytes: number
  readonly gzipped: number
  /** Bytes in the output per package (or `mcp-oauth-store` for our sources). */
  readonly parts: ReadonlyArray<readonly [string, number]>
}

const packageOf = (input: string): string => {
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)
  return match === null ? "mcp-oauth-store (src)" : match[1] ?? input
}

const bundle = async (entry: string): Promise<Bundle> => {
  const built = await bundleForWorkers(entry, undefined, true)
  const file = built.outputFiles[0]
  if (file === undefined) throw new Error(`no bundle for ${entry}`)
  const parts = new Map<string, number>()
  for (const output of Object.values(built.metafile?.outputs ?? {})) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      parts.set(packageOf(input), (parts.get(packageOf(input)) ?? 0) + bytesInOutput)
    }
  }
  return {
    script: file.text,
    bytes: file.contents.length,
    gzipped: gzipSync(file.contents).length,
    parts: [...parts.entries()].sort((a, b) => b[1] - a[1])
  }
}

const EVAL_ROUNDS = 7

/** `cloudflare:workers` for Node: the base class only (the module is evaluated, no object is made). */
const workersStub: esbuild.Plugin = {
  name: "cloudflare-workers-stub",
  setup(build) {
    build.onResolve({ filter: /^cloudflare:workers$/ }, () => ({ path: "cloudflare:workers", namespace: "stub" }))
    build.onLoad({ filter: /.*/, namespace: "stub" }, () => ({
      contents: "export class DurableObject { constructor(ctx, env) { this.ctx = ctx; this.env = env } }",
      loader: "js"
    }))
  }
}

/** Milliseconds a fresh Node process takes to import each bundle (median of interleaved runs). */
const evaluation = async (entries: Readonly<Record<"ours" | "baseline", string>>): Promise<Record<"ours" | "baseline", number>> => {
  const dir = mkdtempSync(join(tmpdir(), "mcp-worker-eval-"))
  try {
    for (const [name, entry] of Object.entries(entries)) {
      await esbuild.build({
        entryPoints: [entry],
        bundle: true,
        format: "esm",
        platform: "neutral",
        conditions: ["workerd", "worker", "browser"],
        mainFields: ["module", "main"],
        target: "es2022",
        minify: true,
        outfile: join(dir, `${name}.mjs`),
        plugins: [workersStub],
        logLevel: "silent"
      })
    }
    const runner = join(dir, "import.mjs")
    writeFileSync(runner, "const t0 = performance.now()\nawait import(process.argv[2])\nprocess.stdout.write(String(performance.now() - t0))\n")
    const times = { ours: [] as Array<number>, baseline: [] as Array<number> }
    for (let round = 0; round < EVAL_ROUNDS; round++) {
      for (const name of round % 2 === 0 ? ["ours", "baseline"] as const : ["baseline", "ours"] as const) {
        times[name].push(Number(execFileSync(process.execPath, [runner, join(dir, `${name}.mjs`)]).toString()))
      }
    }
    return { ours: median(times.ours), baseline: median(times.baseline) }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const KEY = Redacted.value(Effect.runSync(generateKey))

const startOurs = (script: string, port: number, persist?: string) =>
  new Miniflare({
    modules: true,
    script,
    compatibilityDate: "2025-01-01",
    host: "127.0.0.1",
    port,
    durableObjects: { STORE: { className: "StoreObject", useSQLite: true } },
    ...(persist === undefined ? {} : { durableObjectsPersist: persist }),
    bindings: { PUBLIC_URL: `http://127.0.0.1:${port}`, RS_TOKENS_ENC_KEY: KEY, DEV_AUTO_APPROVE: "alice", LOG_LEVEL: "warn" }
  })

const startBaseline = (script: string, port: number) =>
  new Miniflare({ modules: true, script, compatibilityDate: "2025-01-01", host: "127.0.0.1", port })

const DISCOVERY = "/.well-known/oauth-authorization-server"

interface Cold {
  readonly startMs: number
  readonly firstMs: number
  readonly secondMs: number
}

/** A fresh workerd: time to ready, then the first and second request, in milliseconds. */
const coldStart = async (start: (port: number) => Miniflare): Promise<Cold> => {
  const port = await freePort()
  const t0 = performance.now()
  const mf = start(port)
  try {
    const url = (await mf.ready).toString().replace(/\/$/, "")
    const t1 = performance.now()
    const first = await fetch(`${url}${DISCOVERY}`)
    await first.arrayBuffer()
    const t2 = performance.now()
    const second = await fetch(`${url}${DISCOVERY}`)
    await second.arrayBuffer()
    const t3 = performance.now()
    if (!first.ok || !second.ok) throw new Error(`cold start: ${first.status} then ${second.status}`)
    return { startMs: t1 - t0, firstMs: t2 - t1, secondMs: t3 - t2 }
  } finally {
    await mf.dispose()
  }
}

const ms = (value: number) => value.toFixed(1)
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`

const run = async (): Promise<string> => {
  const ours = await bundle(here("../src/worker/main.ts"))
  const baseline = await bundle(here("./workerBaseline.ts"))
  const evaluated = await evaluation({ ours: here("../src/worker/main.ts"), baseline: here("./workerBaseline.ts") })

  // The signing keys in a persisted store, as after the first deploy's first request.
  const stored = mkdtempSync(join(tmpdir(), "mcp-worker-bench-"))
  try {
    await coldStart((port) => startOurs(ours.script, port, stored))
    const rounds: Record<"empty" | "stored" | "baseline", Array<Cold>> = { empty: [], stored: [], baseline: [] }
    for (let round = 0; round < COLD_ROUNDS; round++) {
      const order: Array<keyof typeof rounds> = round % 2 === 0 ? ["empty", "stored", "baseline"] : ["baseline", "stored", "empty"]
      for (const side of order) {
        rounds[side].push(
          await coldStart((port) =>
            side === "baseline"
              ? startBaseline(baseline.script, port)
              : startOurs(ours.script, port, side === "stored" ? stored : undefined)
          )
        )
      }
    }
    const coldRow = (label: string, list: ReadonlyArray<Cold>) =>
      `| ${label} | ${ms(median(list.map((c) => c.startMs)))} | ${ms(median(list.map((c) => c.firstMs)))} | ${
        ms(median(list.map((c) => c.secondMs)))
      } |`

    // Warm requests on one workerd each, over a loopback port.
    const oursPort = await freePort()
    const baselinePort = await freePort()
    const oursMf = startOurs(ours.script, oursPort)
    const baselineMf = startBaseline(baseline.script, baselinePort)
    try {
      const oursUrl = (await oursMf.ready).toString().replace(/\/$/, "")
      const baselineUrl = (await baselineMf.ready).toString().replace(/\/$/, "")
      const { tokens } = await issueTokens(oursUrl)
      const call = JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "tools/call",
        params: {
          name: "whoami",
          arguments: {},
          _meta: {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": { name: "bench", version: "1" }
          }
        }
      })
      const headers = {
        authorization: `Bearer ${tokens.access_token}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "whoami"
      }
      const get = async (url: string) => {
        const response = await fetch(url)
        await response.arrayBuffer()
        if (!response.ok) throw new Error(`${url}: ${response.status}`)
      }
      const toolCall = async () => {
        const response = await fetch(`${oursUrl}/mcp`, { method: "POST", headers, body: call })
        const text = await response.text()
        if (!response.ok || !text.includes("alice")) throw new Error(`tools/call: ${response.status} ${text.slice(0, 200)}`)
      }
      const warm = await runCases([
        { name: "GET discovery document", ours: () => get(`${oursUrl}${DISCOVERY}`), baseline: () => get(`${baselineUrl}/`) },
        { name: "POST /mcp tools/call whoami (2026-07-28, JWT + grant check)", ours: toolCall, baseline: () => get(`${baselineUrl}/`) }
      ], warmOptions)

      return [
        "## The server as a Worker: bundle",
        "",
        "| Worker | minified | gzipped |",
        "|:--|--:|--:|",
        `| ours (src/worker/main.ts) | ${ours.bytes.toLocaleString("en-US")} B (${kib(ours.bytes)}) | ${ours.gzipped.toLocaleString("en-US")} B (${kib(ours.gzipped)}) |`,
        `| baseline (Effect platform, one route) | ${baseline.bytes.toLocaleString("en-US")} B (${kib(baseline.bytes)}) | ${baseline.gzipped.toLocaleString("en-US")} B (${kib(baseline.gzipped)}) |`,
        `| ratio (ours/baseline) | ${(ours.bytes / baseline.bytes).toFixed(2)} | ${(ours.gzipped / baseline.gzipped).toFixed(2)} |`,
        "",
        `What ours is made of (minified bytes): ${ours.parts.slice(0, 8).map(([name, bytes]) => `${name} ${kib(bytes)}`).join(", ")}.`,
        "Cloudflare's limit is 3 MB gzipped on the free plan, 10 MB on paid ones.",
        "",
        `## The server as a Worker: script evaluation in a fresh V8 (median of ${EVAL_ROUNDS} Node processes per side, ms)`,
        "",
        "| Worker | import of the bundle (parse, compile, top-level code) |",
        "|:--|--:|",
        `| ours | ${ms(evaluated.ours)} |`,
        `| baseline (Effect platform, one route) | ${ms(evaluated.baseline)} |`,
        `| ratio (ours/baseline) | ${(evaluated.ours / evaluated.baseline).toFixed(2)} |`,
        "",
        "Cloudflare bounds a Worker's startup (its top-level code) in CPU time; this is the part the bundle decides.",
        "",
        `## The server as a Worker: cold start in workerd (median of ${COLD_ROUNDS} fresh workerd processes per side, ms)`,
        "",
        "| Worker | workerd start + script ready | first request (runtime built) | second request |",
        "|:--|--:|--:|--:|",
        coldRow("ours, empty store (signing keys generated and stored)", rounds.empty),
        coldRow("ours, keys in the store (a new isolate of a deployed Worker)", rounds.stored),
        coldRow("baseline (Effect platform, one route)", rounds.baseline),
        "",
        "The first request is a GET of the discovery document; timed from Node over a loopback port.",
        "",
        formatTable("The server as a Worker: warm requests over a loopback port (baseline: the one-route Worker)", warm, warmOptions)
      ].join("\n")
    } finally {
      await oursMf.dispose()
      await baselineMf.dispose()
    }
  } finally {
    rmSync(stored, { recursive: true, force: true })
  }
}

register({ name: "worker", run })
