/**
 * The Durable Object backend in Miniflare's workerd (`bench/durableWorker.ts`).
 *
 * Inside the object: each operation as `StoreObject` runs it for one RPC call
 * (its call wrapper: the context check, the due-sweep check, the alarm check,
 * the failure mapping; and for rotation the Schema decode and encode of the
 * records) beside raw `ctx.storage.sql` doing the same SQL (rotation: with
 * `JSON.parse` / `JSON.stringify`), both looped inside the same object on the
 * same storage and timed there, in interleaved rounds. So the ratio is the
 * cost of the object's own code, not of SQLite or of a request.
 *
 * Through the binding, from a Worker: what a call costs once it crosses from
 * the Worker to the object (one JS RPC call per operation), for the object's
 * `getAccessToken` against a bare method doing only its `SELECT`, and for the
 * whole layer (`TokenStore.getAccessToken`: Effect, the WebCrypto HMAC, the
 * call, the Schema decode) against the HMAC plus the bare call.
 *
 * Local workerd, not Cloudflare: in production the Worker and the object may
 * be in different places, and a request crossing the network adds its latency.
 */
import { fileURLToPath } from "node:url"
import { Effect, Redacted } from "effect"
import { Miniflare } from "miniflare"
import { generateKey } from "../src/layers/crypto/keyring.ts"
import { workerScript } from "../test/support/workerBundle.ts"
import { median, register, type Row, type SideResult } from "./harness.ts"
import type { Timed } from "./durableWorker.ts"

const ROUNDS = 7
/** Operations per side per round inside the object: enough for ~0.1-0.5 s, since workerd's timer ticks in whole milliseconds. */
const FAST = 10_000
const SLOW = 3_000
/** Sequential calls per side per round through the binding. */
const THROUGH_BINDING = 600
/** Rows the lookups pick from. */
const LOOKUPS = 10_000

const post = async (mf: Miniflare, path: string, body: Record<string, unknown>): Promise<unknown> => {
  const response = await mf.dispatchFetch(`http://bench.test${path}`, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json" }
  })
  const reply = await response.json() as { readonly result?: unknown; readonly error?: string }
  if (!response.ok) throw new Error(`${path}: ${reply.error ?? response.status}`)
  return reply.result
}

const object = (mf: Miniflare, method: string, ...args: Array<unknown>) => post(mf, "/object", { method, args })

/** Per-operation latencies cannot be sampled inside workerd (1 ms timer): only the rate. */
const sideOf = (timed: Timed): SideResult => ({ opsPerSec: timed.ops / (timed.ms / 1000), p99Micros: Number.NaN, batch: 1 })

/** Interleaved rounds of one case: `prepare` untimed before each side, `measure` timed inside workerd. */
const measureCase = async (
  name: string,
  prepare: (side: "ours" | "raw", round: number) => Promise<unknown>,
  measure: (side: "ours" | "raw", round: number) => Promise<Timed>
): Promise<Row> => {
  const results = { ours: [] as Array<SideResult>, raw: [] as Array<SideResult> }
  const ratios: Array<number> = []
  // Round -1 is a warmup (JIT, caches), not recorded.
  for (let round = -1; round < ROUNDS; round++) {
    const order: Array<"ours" | "raw"> = round % 2 === 0 ? ["ours", "raw"] : ["raw", "ours"]
    const perRound: Partial<Record<"ours" | "raw", SideResult>> = {}
    for (const side of order) {
      await prepare(side, round)
      const timed = await measure(side, round)
      if (timed.checksum !== timed.ops) throw new Error(`${name} (${side}): ${timed.checksum} of ${timed.ops} operations did their work`)
      perRound[side] = sideOf(timed)
    }
    if (round < 0) continue
    results.ours.push(perRound.ours as SideResult)
    results.raw.push(perRound.raw as SideResult)
    ratios.push((perRound.ours as SideResult).opsPerSec / (perRound.raw as SideResult).opsPerSec)
  }
  const summarize = (list: ReadonlyArray<SideResult>): SideResult => ({
    opsPerSec: median(list.map((r) => r.opsPerSec)),
    p99Micros: Number.NaN,
    batch: 1
  })
  return {
    name,
    concurrency: 1,
    ours: summarize(results.ours),
    baseline: summarize(results.raw),
    ratio: median(ratios),
    ratioMin: Math.min(...ratios),
    ratioMax: Math.max(...ratios)
  }
}

const rate = (opsPerSec: number): string => Math.round(opsPerSec).toLocaleString("en-US")
const micros = (opsPerSec: number): string => (1e6 / opsPerSec).toFixed(1)
const ratio = (value: number): string => value.toFixed(2)

/** A Markdown table of rows: ops/s and mean µs per operation for each side, and the ratio. */
const table = (title: string, rows: ReadonlyArray<Row>): string => {
  const header = ["operation", "ours ops/s", "ours µs/op", "raw ops/s", "raw µs/op", "ratio (ours/raw ops/s)", "ratio min–max"]
  const body = rows.map((row) => [
    row.name,
    rate(row.ours.opsPerSec),
    micros(row.ours.opsPerSec),
    rate(row.baseline.opsPerSec),
    micros(row.baseline.opsPerSec),
    ratio(row.ratio),
    `${ratio(row.ratioMin)}–${ratio(row.ratioMax)}`
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((cells) => (cells[i] as string).length)))
  const line = (cells: ReadonlyArray<string>) =>
    `| ${cells.map((cell, i) => i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number)).join(" | ")} |`
  const separator = `|${widths.map((w, i) => i === 0 ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`).join("|")}|`
  return [
    `## ${title}`,
    "",
    line(header),
    separator,
    ...body.map(line),
    "",
    `Medians of ${ROUNDS} interleaved rounds (after one warmup round); ratio = median of per-round ratios (> 1: ours faster).`
  ].join("\n")
}

const run = async (): Promise<string> => {
  const script = await workerScript(fileURLToPath(new URL("./durableWorker.ts", import.meta.url)))
  const mf = new Miniflare({
    modules: true,
    script,
    compatibilityDate: "2025-01-01",
    durableObjects: { BENCH: { className: "BenchStoreObject", useSQLite: true } },
    bindings: { RS_TOKENS_ENC_KEY: Redacted.value(Effect.runSync(generateKey)) }
  })
  try {
    await mf.ready
    await object(mf, "benchFill", LOOKUPS)
    await post(mf, "/fill-layer", { n: LOOKUPS })

    const inObject = (
      op: string,
      n: number,
      prepare: (side: "ours" | "raw", round: number) => Promise<unknown> = async () => {}
    ) =>
      measureCase(
        `${op} (${n.toLocaleString("en-US")} per side per round)`,
        prepare,
        async (side, round) => await object(mf, "benchRun", op, side, n, LOOKUPS, round) as Timed
      )

    const objectRows: Array<Row> = [
      await inObject("consumeCode", FAST, (side, round) => object(mf, "benchCodes", `${side}-${round}`, FAST)),
      await inObject("getAccessToken", FAST),
      await inObject("getSession", FAST),
      await inObject("createSession", SLOW),
      await inObject("rotateRefreshToken", SLOW, async (side, round) => round === -1 ? object(mf, "benchChain", side) : undefined),
      await inObject("consumeToken", FAST),
      await inObject("rememberId", FAST)
    ]

    const throughBinding = (name: string, op: string) =>
      measureCase(
        name,
        async () => {},
        async (side) => await post(mf, "/binding", { op, side, n: THROUGH_BINDING, lookups: LOOKUPS }) as Timed
      )
    const bindingRows: Array<Row> = [
      await throughBinding("one RPC call: getAccessToken (ours) vs a bare SELECT method (baseline)", "rpc"),
      await throughBinding("TokenStore.getAccessToken via the layer (ours) vs HMAC + bare call (baseline)", "layer")
    ]

    return [
      table("Durable Object: operations inside the object vs raw ctx.storage.sql (same object, same SQL)", objectRows),
      "",
      "consumeToken is RateLimiter.consume's step (read the bucket, decide, write), over 10,000 buckets per side and round;",
      "rememberId is ReplayCache.remember's (one conditional upsert), each id new.",
      "Lookups pick among 10,000 rows; createSession runs at the 10,000-session global cap (each create evicts one, as the",
      "store must). Timed inside workerd, whose timer ticks in whole milliseconds: a per-operation p99 cannot be measured",
      "there, so the table gives the mean per operation.",
      "",
      table(`Durable Object: per call through the binding, from a Worker (${THROUGH_BINDING} sequential calls per side per round)`, bindingRows)
    ].join("\n")
  } finally {
    await mf.dispose()
  }
}

register({ name: "durable", run })
