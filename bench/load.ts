/**
 * The server under HTTP load (issue 6): autocannon in this process drives
 * our server (`src/main.ts`, `STORE=memory`, its default logging, in its own
 * process) and, in the same run, a plain `node:http` baseline doing the same
 * JWT work with `jose` (bench/loadBaseline.ts, its own process).
 *
 * Scenarios:
 * - `tools/call whoami`: `POST /mcp` with a valid bearer JWT and an
 *   initialized session (both obtained the way a client does: register,
 *   authorize through the development switch, token, initialize,
 *   notifications/initialized), the 2025 era. Baseline: verify the same bearer
 *   against our published JWKS with `jwtVerify`, answer a result of the same shape.
 * - `tools/call whoami, 2026-07-28`: the same call in the stateless era (the
 *   `_meta` envelope and the `Mcp-Method`/`Mcp-Name` headers, no session).
 * - `/token refresh`: every connection chains its own refresh token (each
 *   response's `refresh_token` is the next request's), so every request is a
 *   real rotation, never a replay; one grant per connection, issued fresh
 *   before each run. Baseline: parse the form, sign a new RS256 JWT, answer a
 *   token response of the same shape.
 *
 * The two sides never run at once: warmup (baseline, ours), then rounds of
 * baseline then ours; the ratio is taken per round, the table shows medians.
 * Every response of ours must be a 200 with the expected body, or the bench
 * fails. Ours runs with `METRICS=on`: `/metrics` is scraped before the
 * first run and after the last, the counters that the scenarios must move
 * are printed before and after, and the bench fails if one did not move (or
 * if fewer refresh tokens were counted as issued than refreshes were
 * answered); `LOAD_METRICS=off` runs ours without metrics and no scrape (to
 * see what metrics cost under load). Settings: `LOAD_SECONDS` (per run, default 10), `LOAD_WARMUP_SECONDS`
 * (default 2), `LOAD_ROUNDS` (default 2), `LOAD_CONNECTIONS` (default 10);
 * `LOAD_CPU_PROF=<dir>` has our server write a CPU profile there; `LOAD_LOG_LEVEL`
 * sets its `LOG_LEVEL` (default: its own default, info: one line per request).
 */
import autocannon, { type AutocannonRequest, type Client, type Options, type Result } from "autocannon"
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import {
  callToolRequest,
  expectStatus,
  grantTokens,
  initializeSession,
  mcpHeaders,
  modernToolCallBody,
  modernToolCallHeaders,
  registerPublicClient,
  send,
  toolCallBody
} from "../test/support/oauthFlow.ts"
import { sampleOf, type Scrape, scrape } from "../test/support/prometheus.ts"
import { startServer } from "../test/support/server.ts"
import { median, register } from "./harness.ts"

const ROOT = fileURLToPath(new URL("..", import.meta.url))
const HOST = "127.0.0.1"

const setting = (name: string, fallback: number): number => {
  const raw = process.env[name]
  const value = raw === undefined ? fallback : Number(raw)
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`)
  return value
}

// ---------------------------------------------------------------------------
// Child processes

interface Child {
  readonly url: string
  readonly pid: number
  /** Send a signal; resolves once the process has exited. */
  readonly stop: (signal?: NodeJS.Signals) => Promise<unknown>
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const logTail = (file: string): string => {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-20).join("\n")
  } catch {
    return "(no log)"
  }
}

/** Variables our server reads; the baseline inherits none of them. */
const SERVER_VARIABLES = /^(PORT|HOST|PUBLIC_URL|STORE|DATA_DIR|API_KEYS|DEV_AUTO_APPROVE|UPSTREAM_.*|SCOPES|ACCESS_TOKEN_.*|MAX_BODY_BYTES|REDIS_URL|RS_TOKENS_ENC_KEY|LOG_LEVEL|TRUST_PROXY|REGISTER_.*|AUTHORIZE_.*|SIGN_IN_.*|METRICS|OTEL_.*)$/

const cleanEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) if (!SERVER_VARIABLES.test(name)) env[name] = value
  return { ...env, ...extra }
}

/** SIGTERM, then SIGKILL if the process is still there after 5 s. */
const stopChild = async (child: Child): Promise<void> => {
  const done = await Promise.race([child.stop("SIGTERM").then(() => true), sleep(5_000).then(() => false)])
  if (!done) await child.stop("SIGKILL")
}

/** `LOAD_CPU_PROF=<dir>`: our server writes a V8 CPU profile there when it stops (open it in Chrome DevTools). */
const cpuProfileOptions = (): ReadonlyArray<string> => {
  const dir = process.env["LOAD_CPU_PROF"]
  return dir === undefined || dir === "" ? [] : ["--cpu-prof", `--cpu-prof-dir=${dir}`]
}

/** `LOAD_LOG_LEVEL`: our server's `LOG_LEVEL` (default: unset, the server's default, which logs every request). */
const serverLogLevel = (): string | undefined => {
  const level = process.env["LOAD_LOG_LEVEL"]
  return level === undefined || level === "" ? undefined : level
}

/**
 * The baseline server (`node --import tsx bench/loadBaseline.ts`, not test/support/server.ts: it is
 * not our server and reports its port as one JSON line on stdout); stderr goes to a file.
 */
const startBaseline = async (dataDir: string, env: Record<string, string>, script = "bench/loadBaseline.ts"): Promise<Child> => {
  const logFile = join(dataDir, `${script.replace(/\W/g, "_")}.log`)
  const fd = openSync(logFile, "a")
  let child: ChildProcess
  try {
    child = spawn(process.execPath, ["--import", "tsx", script], { cwd: ROOT, env: cleanEnv(env), stdio: ["ignore", "pipe", fd] })
  } finally {
    closeSync(fd)
  }
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const port = await new Promise<number>((resolve, reject) => {
    let buffer = ""
    const timer = setTimeout(() => reject(new Error(`baseline did not start:\n${logTail(logFile)}`)), 30_000)
    child.stdout?.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("utf8")
      const line = buffer.split("\n")[0]
      if (buffer.includes("\n") && line !== undefined) {
        clearTimeout(timer)
        resolve((JSON.parse(line) as { port: number }).port)
      }
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`baseline exited (${code}):\n${logTail(logFile)}`))
    })
  })
  return {
    url: `http://${HOST}:${port}`,
    pid: child.pid ?? 0,
    stop: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    }
  }
}

// ---------------------------------------------------------------------------
// The OAuth client side, over HTTP, as a client does it

interface Metadata {
  readonly jwks_uri?: string
}

const getJson = async <A>(url: string, what: string): Promise<A> => JSON.parse(expectStatus(await send(url), 200, what).body) as A

const WHOAMI_BODY = toolCallBody("whoami")

/** A successful tool result (not a JSON-RPC error, not a tool error). */
const isToolResult = (body: string): boolean => body.includes("\"result\"") && !body.includes("\"isError\":true")

// ---------------------------------------------------------------------------
// Runs

/** `baseline`: node:http + jose (verified-token cache); `stores`: node:http + our engine and stores called directly. */
type Side = "ours" | "baseline" | "stores"

/** Where a side listens, and its process (for its CPU time). */
interface Target {
  readonly url: string
  readonly pid: number
}

/** Linux reports a process's CPU times in clock ticks of 1/100 s (`USER_HZ`). */
const MICROS_PER_TICK = 10_000

/**
 * The CPU time a process has used so far, user and system, every thread (the
 * libuv pool that signs, the GC's helpers), in µs: from `/proc/<pid>/stat`;
 * `undefined` where there is none (not Linux).
 */
const processCpuMicros = (pid: number): number | undefined => {
  try {
    // The fields after the command name (which may hold spaces, in parentheses): utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? []
    const ticks = Number(fields[11]) + Number(fields[12])
    return Number.isFinite(ticks) ? ticks * MICROS_PER_TICK : undefined
  } catch {
    return undefined
  }
}

interface RunResult {
  readonly side: Side
  readonly reqPerSec: number
  readonly p50: number
  readonly p99: number
  /** autocannon's own histogram percentiles (1 ms resolution). */
  readonly histogramP50: number
  readonly histogramP99: number
  readonly requests: number
  readonly bytesPerResponse: number
  readonly non2xx: number
  /** The server process's CPU time during the run per request answered (µs); `undefined` where it cannot be read. */
  readonly cpuPerRequest: number | undefined
}

/** The `q` quantile (nearest rank) of sorted samples. */
const quantile = (sorted: Float64Array, q: number): number =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number

interface Scenario {
  readonly name: string
  readonly connections: number
  /** The lowest acceptable ratio against the jose baseline (issue 14). */
  readonly aim?: number
  /** autocannon options for a run against `url` (fresh per run: it may issue tokens). */
  readonly options: (side: Side, url: string) => Promise<{ readonly options: Options; readonly failures: () => ReadonlyArray<string> }>
}

/** One autocannon run; every response time is kept (autocannon's histogram rounds to 1 ms). */
const runOnce = async (scenario: Scenario, side: Side, target: Target, seconds: number): Promise<RunResult> => {
  const { failures, options } = await scenario.options(side, target.url)
  const times: Array<number> = []
  const cpuBefore = processCpuMicros(target.pid)
  const instance = autocannon({ ...options, duration: seconds })
  instance.on("response", (_client, _status, _bytes, responseTime) => {
    times.push(responseTime)
  })
  const result: Result = await instance
  const cpuAfter = processCpuMicros(target.pid)
  const problems = [
    ...(result.errors > 0 ? [`${result.errors} connection errors (${result.timeouts} timeouts)`] : []),
    ...(result.non2xx > 0 ? [`${result.non2xx} non-2xx responses: ${JSON.stringify(result.statusCodeStats)}`] : []),
    ...(result.mismatches > 0 ? [`${result.mismatches} responses without the expected body`] : []),
    ...(result.requests.total === 0 ? ["no request completed"] : []),
    ...failures()
  ]
  if (problems.length > 0) {
    throw new Error(`load bench: ${scenario.name}, ${side}: ${problems.join("; ")}`)
  }
  const sorted = Float64Array.from(times).sort()
  return {
    side,
    reqPerSec: result.requests.total / result.duration,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    histogramP50: result.latency.p50,
    histogramP99: result.latency.p99,
    requests: result.requests.total,
    bytesPerResponse: result.throughput.total / Math.max(1, result.requests.total),
    non2xx: result.non2xx,
    cpuPerRequest: cpuBefore === undefined || cpuAfter === undefined ? undefined : (cpuAfter - cpuBefore) / result.requests.total
  }
}

interface ScenarioResult {
  readonly name: string
  readonly connections: number
  /** The lowest acceptable ratio against the jose baseline (issue 14); none: a row without an aim. */
  readonly aim?: number
  readonly runs: ReadonlyArray<RunResult>
  /** ours/baseline per round. */
  readonly ratios: ReadonlyArray<number>
  /** ours/stores per round. */
  readonly storeRatios: ReadonlyArray<number>
  /** Per round, the stores baseline / the jose baseline: our ratio if everything above the store and engine calls cost nothing. */
  readonly floorRatios: ReadonlyArray<number>
  /** Requests our server answered during the warmup. */
  readonly warmupRequests: number
}

const runScenario = async (
  scenario: Scenario,
  targets: Record<Side, Target>,
  settings: { readonly seconds: number; readonly warmup: number; readonly rounds: number }
): Promise<ScenarioResult> => {
  const order: ReadonlyArray<Side> = ["baseline", "stores", "ours"]
  let warmupRequests = 0
  for (const side of order) {
    const warmup = await runOnce(scenario, side, targets[side], settings.warmup)
    if (side === "ours") warmupRequests += warmup.requests
  }
  const runs: Array<RunResult> = []
  const ratios: Array<number> = []
  const storeRatios: Array<number> = []
  const floorRatios: Array<number> = []
  for (let round = 0; round < settings.rounds; round++) {
    const perRound: Partial<Record<Side, RunResult>> = {}
    for (const side of order) {
      const run = await runOnce(scenario, side, targets[side], settings.seconds)
      perRound[side] = run
      runs.push(run)
    }
    ratios.push((perRound.ours as RunResult).reqPerSec / (perRound.baseline as RunResult).reqPerSec)
    storeRatios.push((perRound.ours as RunResult).reqPerSec / (perRound.stores as RunResult).reqPerSec)
    floorRatios.push((perRound.stores as RunResult).reqPerSec / (perRound.baseline as RunResult).reqPerSec)
  }
  return {
    name: scenario.name,
    connections: scenario.connections,
    ...(scenario.aim === undefined ? {} : { aim: scenario.aim }),
    runs,
    ratios,
    storeRatios,
    floorRatios,
    warmupRequests
  }
}

// ---------------------------------------------------------------------------
// Scenarios

/** What a side's server needs from a request: its own access token, session and client (each side issued its own). */
interface Credentials {
  readonly accessToken: string
  readonly sessionId: string
  readonly clientId: string
}

/** The aims of issue 14 against the jose baseline: tools/call at least half its throughput, a refresh 0.6. */
const TOOLS_CALL_AIM = 0.5
const REFRESH_AIM = 0.6

const whoamiScenario = (connections: number, credentials: (side: Side) => Credentials): Scenario => ({
  name: `tools/call whoami, 2025 session (POST /mcp), ${connections} conn.`,
  connections,
  aim: TOOLS_CALL_AIM,
  options: (side, url) =>
    Promise.resolve({
      options: {
        url: `${url}/mcp`,
        connections,
        method: "POST",
        headers: mcpHeaders(credentials(side).accessToken, credentials(side).sessionId),
        body: WHOAMI_BODY,
        verifyBody: isToolResult
      },
      failures: () => []
    })
})

const modernWhoamiScenario = (connections: number, credentials: (side: Side) => Credentials): Scenario => ({
  name: `tools/call whoami, 2026-07-28 (POST /mcp, no session), ${connections} conn.`,
  connections,
  aim: TOOLS_CALL_AIM,
  options: (side, url) =>
    Promise.resolve({
      options: {
        url: `${url}/mcp`,
        connections,
        method: "POST",
        headers: modernToolCallHeaders(credentials(side).accessToken, "whoami"),
        body: modernToolCallBody("whoami"),
        verifyBody: isToolResult
      },
      failures: () => []
    })
})

const refreshScenario = (
  connections: number,
  credentials: (side: Side) => Credentials,
  freshRefreshTokens: (side: Side, count: number) => Promise<Array<string>>
): Scenario => ({
  name: `refresh_token grant (POST /token, rotation), ${connections} conn.`,
  connections,
  aim: REFRESH_AIM,
  options: async (side, url) => {
    const pool = await freshRefreshTokens(side, connections)
    const clientId = credentials(side).clientId
    const failures: Array<string> = []
    const setupClient = (client: Client): void => {
      const refreshToken = pool.pop()
      if (refreshToken === undefined) throw new Error("more connections than refresh tokens")
      // This connection's chain: each response's refresh token is the next request's.
      const chain = { refreshToken, broken: false }
      const request: AutocannonRequest = {
        method: "POST",
        path: "/token",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        setupRequest: (template) => ({
          ...template,
          body: `grant_type=refresh_token&refresh_token=${encodeURIComponent(chain.refreshToken)}&client_id=${encodeURIComponent(clientId)}`
        }),
        onResponse: (status, body) => {
          if (chain.broken) return
          const next = status === 200 ? (JSON.parse(body) as { refresh_token?: unknown; access_token?: unknown }) : undefined
          if (next !== undefined && typeof next.refresh_token === "string" && typeof next.access_token === "string") {
            chain.refreshToken = next.refresh_token
          } else {
            chain.broken = true
            failures.push(`a refresh chain broke: ${status} ${body.slice(0, 200)}`)
          }
        }
      }
      client.setRequests([request])
    }
    return { options: { url, connections, setupClient }, failures: () => failures }
  }
})

// ---------------------------------------------------------------------------
// Report

const rate = (n: number): string => Math.round(n).toLocaleString("en-US")
const ms = (n: number): string => n >= 10 ? n.toFixed(1) : n.toFixed(2)
const ratio = (n: number): string => n.toFixed(2)
/** CPU µs per request, or `-` where it could not be read. */
const cpu = (n: number | undefined): string => n === undefined || !Number.isFinite(n) ? "-" : n.toFixed(0)
/** The median CPU per request of some runs (`undefined` when any could not be read). */
const medianCpu = (runs: ReadonlyArray<RunResult>): number | undefined =>
  runs.some((run) => run.cpuPerRequest === undefined) ? undefined : median(runs.map((run) => run.cpuPerRequest as number))

const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): Array<string> => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((cells) => (cells[i] as string).length)))
  const line = (cells: ReadonlyArray<string>) =>
    `| ${cells.map((cell, i) => i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number)).join(" | ")} |`
  const separator = `|${widths.map((w, i) => i === 0 ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`).join("|")}|`
  return [line(header), separator, ...rows.map(line)]
}

/** The p99 aim of issue 14 for tools/call at 50 connections, in milliseconds. */
const P99_AIM_MS = 20

/** The aim cell of a row: its ratio aim (and at 50 connections, the p99 aim), each `ok` or `UNDER`. */
const aimCell = (result: ScenarioResult, p99: number): string => {
  if (result.aim === undefined) return "-"
  const parts = [`≥ ${ratio(result.aim)} ${median(result.ratios) < result.aim ? "UNDER" : "ok"}`]
  if (result.connections >= 50 && result.aim === TOOLS_CALL_AIM) parts.push(`p99 < ${P99_AIM_MS} ms ${p99 < P99_AIM_MS ? "ok" : "UNDER"}`)
  return parts.join(", ")
}

const summary = (results: ReadonlyArray<ScenarioResult>): Array<string> => {
  const of = (result: ScenarioResult, side: Side) => result.runs.filter((run) => run.side === side)
  const cells = (runs: ReadonlyArray<RunResult>) => [
    rate(median(runs.map((r) => r.reqPerSec))),
    ms(median(runs.map((r) => r.p50))),
    ms(median(runs.map((r) => r.p99)))
  ]
  return table(
    [
      "scenario",
      "ours req/s",
      "ours p50 ms",
      "ours p99 ms",
      "baseline req/s",
      "baseline p99 ms",
      "ratio (ours/baseline)",
      "ratio min–max",
      "aim",
      "stores baseline req/s",
      "ratio (ours/stores)",
      "stores/baseline",
      "server CPU µs/request: ours / stores / baseline",
      "ours non-2xx"
    ],
    results.map((result) => {
      const [baselineRate, , baselineP99] = cells(of(result, "baseline"))
      const oursP99 = median(of(result, "ours").map((r) => r.p99))
      return [
        result.name,
        ...cells(of(result, "ours")),
        baselineRate as string,
        baselineP99 as string,
        ratio(median(result.ratios)),
        `${ratio(Math.min(...result.ratios))}–${ratio(Math.max(...result.ratios))}`,
        aimCell(result, oursP99),
        rate(median(of(result, "stores").map((r) => r.reqPerSec))),
        ratio(median(result.storeRatios)),
        ratio(median(result.floorRatios)),
        (["ours", "stores", "baseline"] as const).map((side) => cpu(medianCpu(of(result, side)))).join(" / "),
        String(of(result, "ours").reduce((sum, run) => sum + run.non2xx, 0))
      ]
    })
  )
}

/** One line on the rows under their aims. */
const aimLine = (results: ReadonlyArray<ScenarioResult>): string => {
  const under = results.filter((result) => {
    const p99 = median(result.runs.filter((run) => run.side === "ours").map((run) => run.p99))
    return aimCell(result, p99).includes("UNDER")
  })
  return under.length === 0 ? "Aims: every row meets its aim." : `Aims: ${under.length} of ${results.length} rows UNDER: ${under.map((r) => r.name).join("; ")}.`
}

const details = (results: ReadonlyArray<ScenarioResult>): Array<string> =>
  table(
    ["run", "side", "requests", "req/s", "p50 ms", "p99 ms", "autocannon p50/p99 ms", "bytes/response", "server CPU µs/request"],
    results.flatMap((result) =>
      result.runs.map((run, i) => [
        `${result.name} #${Math.floor(i / 3) + 1}`,
        run.side,
        rate(run.requests),
        rate(run.reqPerSec),
        ms(run.p50),
        ms(run.p99),
        `${run.histogramP50}/${run.histogramP99}`,
        String(Math.round(run.bytesPerResponse)),
        cpu(run.cpuPerRequest)
      ])
    )
  )

// ---------------------------------------------------------------------------
// /metrics, scraped before and after

/** A series the scenarios must move, and why. */
interface Watched {
  readonly label: string
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
}

const storeOp = (operation: string): Watched => ({
  label: `store ${operation}`,
  name: "mcp_store_operations_total",
  labels: { operation, backend: "memory" }
})

/** What each scenario drives through the store and the engine. */
const WATCHED: ReadonlyArray<Watched> = [
  storeOp("SessionStore.get"),
  storeOp("TokenStore.getGrant"),
  storeOp("TokenStore.rotateRefreshToken"),
  storeOp("TokenStore.saveRefreshToken"),
  { label: "tokens issued (refresh_token grant, access)", name: "mcp_oauth_tokens_issued_total", labels: { grant_type: "refresh_token", token: "access" } },
  { label: "tokens issued (refresh_token grant, refresh)", name: "mcp_oauth_tokens_issued_total", labels: { grant_type: "refresh_token", token: "refresh" } }
]

/** Mean latency (µs) of a store operation between two scrapes, from its histogram's sum and count. */
const meanMicros = (before: Scrape, after: Scrape, labels: Readonly<Record<string, string>>): string => {
  const count = sampleOf(after, "mcp_store_operation_duration_seconds_count", labels) -
    sampleOf(before, "mcp_store_operation_duration_seconds_count", labels)
  const sum = sampleOf(after, "mcp_store_operation_duration_seconds_sum", labels) - sampleOf(before, "mcp_store_operation_duration_seconds_sum", labels)
  return count > 0 ? (sum / count * 1e6).toFixed(1) : "-"
}

/** The watched counters before and after; throws when one did not move or the refreshes do not add up. */
const metricsReport = (before: Scrape, after: Scrape, refreshesAnswered: number): Array<string> => {
  const rows = WATCHED.map((w) => {
    const was = sampleOf(before, w.name, w.labels)
    const now = sampleOf(after, w.name, w.labels)
    return { w, was, now }
  })
  const still = rows.filter((row) => row.now <= row.was).map((row) => row.w.label)
  if (still.length > 0) throw new Error(`load bench: /metrics: these counters did not move: ${still.join(", ")}`)
  const issued = rows.find((row) => row.w.name === "mcp_oauth_tokens_issued_total" && row.w.labels["token"] === "refresh")
  if (issued === undefined || issued.now - issued.was < refreshesAnswered) {
    throw new Error(`load bench: /metrics counted ${issued === undefined ? 0 : issued.now - issued.was} refresh tokens issued, fewer than the ${refreshesAnswered} refreshes answered`)
  }
  const all = (s: Scrape) =>
    [...s.samples].filter(([key]) => key.startsWith("mcp_store_operations_total{")).reduce((sum, [, value]) => sum + value, 0)
  return table(
    ["series (GET /metrics)", "before", "after", "moved", "mean store latency µs"],
    [
      ...rows.map(({ now, w, was }) => [
        w.label,
        rate(was),
        rate(now),
        rate(now - was),
        w.name === "mcp_store_operations_total" ? meanMicros(before, after, w.labels) : ""
      ]),
      ["store operations, all", rate(all(before)), rate(all(after)), rate(all(after) - all(before)), ""]
    ]
  )
}

// ---------------------------------------------------------------------------

const run = async (): Promise<string> => {
  const settings = {
    seconds: setting("LOAD_SECONDS", 10),
    warmup: setting("LOAD_WARMUP_SECONDS", 2),
    rounds: Math.max(1, Math.floor(setting("LOAD_ROUNDS", 2)))
  }
  // Issue 14: at 10 and at 50 connections (LOAD_CONNECTIONS: a comma-separated list).
  const connectionCounts = (process.env["LOAD_CONNECTIONS"] ?? "10,50").split(",").map((n) => Math.max(1, Math.floor(Number(n))))
  if (connectionCounts.some((n) => !Number.isFinite(n))) throw new Error("LOAD_CONNECTIONS must be numbers separated by commas")
  const metricsOn = process.env["LOAD_METRICS"] !== "off"
  const dataDir = mkdtempSync(join(tmpdir(), "load-bench-"))
  const children: Array<Child> = []
  try {
    const level = serverLogLevel()
    // Our server on a free port, memory store, development auto-approval; its log goes to a file.
    const ours = await startServer({
      // One address authorizes a fresh grant per connection and round: past the per-address pace a user gets.
      env: {
        STORE: "memory",
        DEV_AUTO_APPROVE: "bench",
        DATA_DIR: dataDir,
        AUTHORIZE_RATE_LIMIT: "off",
        METRICS: metricsOn ? "on" : "off",
        ...(level === undefined ? {} : { LOG_LEVEL: level })
      },
      logFile: join(dataDir, "server.log"),
      nodeOptions: cpuProfileOptions(),
      timeout: 60_000
    })
    children.push(ours)
    const metadata = await getJson<Metadata>(`${ours.url}/.well-known/oauth-authorization-server`, "metadata")
    const jwks = await getJson<{ keys: Array<{ alg?: string }> }>(metadata.jwks_uri ?? `${ours.url}/.well-known/jwks.json`, "JWKS")
    const clientId = await registerPublicClient(ours.url)
    const first = await grantTokens(ours.url, clientId)
    const sessionId = await initializeSession(ours.url, first.access_token)

    // The token's own claims tell the baseline what to check (no guessing the audience).
    const [headerPart, payloadPart] = first.access_token.split(".")
    if (headerPart === undefined || payloadPart === undefined) throw new Error("the access token is not a JWT (ACCESS_TOKEN_FORMAT=jwt expected)")
    const header = JSON.parse(Buffer.from(headerPart, "base64url").toString()) as { alg: string }
    const claims = JSON.parse(Buffer.from(payloadPart, "base64url").toString()) as { iss: string; aud: string | Array<string> }
    const audience = Array.isArray(claims.aud) ? claims.aud[0] ?? "" : claims.aud

    // One probe call each way, so a broken endpoint fails here with its body, not as a count.
    const probeBody = expectStatus(await callToolRequest(ours.url, first.access_token, sessionId, "whoami"), 200, "POST /mcp tools/call whoami").body
    if (!isToolResult(probeBody)) throw new Error(`POST /mcp tools/call whoami: not a tool result: ${probeBody.slice(0, 300)}`)

    const baseline = await startBaseline(dataDir, {
      BASELINE_JWKS: JSON.stringify(jwks),
      BASELINE_ISSUER: claims.iss,
      BASELINE_AUDIENCE: audience,
      BASELINE_ALG: header.alg
    })
    children.push(baseline)
    const baselineProbeBody = expectStatus(await callToolRequest(baseline.url, first.access_token, sessionId, "whoami"), 200, "baseline tools/call").body
    if (!isToolResult(baselineProbeBody)) throw new Error(`baseline tools/call: ${baselineProbeBody.slice(0, 300)}`)

    const stores = await startBaseline(dataDir, {}, "bench/loadStoresBaseline.ts")
    children.push(stores)
    const storesSetup = async (refresh: number) =>
      getJson<Credentials & { readonly refreshTokens: Array<string> }>(`${stores.url}/bench-setup?refresh=${refresh}`, "stores baseline setup")
    const storesCredentials = await storesSetup(0)
    const oursCredentials: Credentials = { accessToken: first.access_token, sessionId, clientId }
    const credentials = (side: Side): Credentials => side === "stores" ? storesCredentials : oursCredentials

    const freshRefreshTokens = async (side: Side, count: number): Promise<Array<string>> => {
      if (side === "stores") return [...(await storesSetup(count)).refreshTokens]
      const tokens: Array<string> = []
      for (let i = 0; i < count; i++) {
        tokens.push(side === "ours" ? (await grantTokens(ours.url, clientId)).refresh_token : randomBytes(32).toString("base64url"))
      }
      return tokens
    }

    const linesBefore = ours.lines().length
    const metricsBefore = metricsOn ? await scrape(`${ours.url}/metrics`) : undefined
    const results: Array<ScenarioResult> = []
    const targets: Record<Side, Target> = { ours, baseline, stores }
    for (const connections of connectionCounts) {
      results.push(await runScenario(whoamiScenario(connections, credentials), targets, settings))
      results.push(await runScenario(modernWhoamiScenario(connections, credentials), targets, settings))
      results.push(await runScenario(refreshScenario(connections, credentials, freshRefreshTokens), targets, settings))
    }
    const oursRequests = results.reduce(
      (sum, result) => sum + result.warmupRequests + result.runs.filter((r) => r.side === "ours").reduce((n, r) => n + r.requests, 0),
      0
    )
    const logLines = ours.lines().length - linesBefore
    const metricsAfter = metricsOn ? await scrape(`${ours.url}/metrics`) : undefined
    const refreshesAnswered = results
      .filter((result) => result.name.startsWith("refresh_token grant"))
      .reduce((sum, result) => sum + result.warmupRequests + result.runs.filter((r) => r.side === "ours").reduce((n, r) => n + r.requests, 0), 0)
    const metricsTable = metricsBefore === undefined || metricsAfter === undefined
      ? ["(LOAD_METRICS=off: our server ran without metrics, nothing was scraped.)"]
      : metricsReport(metricsBefore, metricsAfter, refreshesAnswered)

    return [
      `## Load: our server vs a plain node:http + jose server, and vs node:http + our stores (autocannon, ${connectionCounts.join(" and ")} connections)`,
      "",
      ...summary(results),
      "",
      aimLine(results),
      "",
      `Each side in its own process, never both at once: warmup ${settings.warmup} s per side, then ${settings.rounds} rounds of ` +
      `baseline ${settings.seconds} s, ours ${settings.seconds} s; medians over rounds, ratio = median of per-round ratios (> 1: ours faster). ` +
      "p50/p99: autocannon's per-request response times (its histogram rounds to 1 ms; its figures are in the runs table).",
      `Ours: src/main.ts with STORE=memory, DEV_AUTO_APPROVE, ${metricsOn ? "METRICS=on (instrumented stores)" : "METRICS=off"}, ${level === undefined ? "default logging" : `LOG_LEVEL=${level}`} ` +
      `(it wrote ${rate(logLines)} JSON log lines, to a file, while serving ${rate(oursRequests)} load requests, warmups included), ` +
      `${header.alg} JWT access tokens. Every response of ours was checked: ` +
      "200 with a tool result, or 200 with a new refresh token that the connection's next request used.",
      "Baseline (bench/loadBaseline.ts) does only the JWT work: tools/call verifies the same bearer against our published JWKS " +
      "(jose createLocalJWKSet + jwtVerify, issuer and audience) through a cache of verified tokens like ours (exp checked on every hit) " +
      "and echoes the claims; " +
      "refresh parses the form and signs a new JWT. It has NO store (no session lookup, no grant, no client lookup), " +
      "NO refresh-token rotation or replay detection, no scope check, no logging. Ours verifies through its cache of verified tokens " +
      "(the same bearer every request) and reads the grant and the session from the store; each refresh of ours is a real rotation " +
      "(consume the old token, store the new one, sign a JWT).",
      "Stores baseline (bench/loadStoresBaseline.ts): plain node:http calling our engine and memory stores directly, one runPromise per request, " +
      "no HTTP framework, no MCP endpoint, no log line. Its ratio to the jose baseline (stores/baseline) is where our ratio would be " +
      "if everything above the store and engine calls cost nothing.",
      "Server CPU µs/request: the server process's user and system CPU time during a run (every thread: the libuv pool " +
      "that signs, the GC's helpers; from /proc, Linux only) over the requests it answered, median over rounds. It includes " +
      "the kernel's work of sending each response, which on these virtual machines costs a slower server more per request " +
      "(waking an idle client is dearer than reaching a busy one).",
      "",
      "Runs:",
      "",
      ...details(results),
      "",
      "Metrics: our server's /metrics scraped before the first run and after the last (warmups and the grants issued for the refresh runs included):",
      "",
      ...metricsTable
    ].join("\n")
  } finally {
    for (const child of children.reverse()) await stopChild(child)
    rmSync(dataDir, { recursive: true, force: true })
  }
}

register({ name: "load", run })
