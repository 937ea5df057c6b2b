/**
 * A tiny benchmark harness: ours beside a raw baseline, measured in the same
 * process, interleaved in rounds, reported as medians.
 *
 * Why interleave: these machines drift 16–46% between runs (DEPENDENCIES.md,
 * "Performance facts"), so an absolute figure means little. Each round runs
 * ours and the baseline back to back (alternating which goes first, so neither
 * always gets the warmer or the cooler half of the round); the ratio is taken
 * inside each round and the table shows the median over rounds.
 *
 * What is measured, per side and round:
 * - ops/s: operations completed divided by the round's wall time (timer reads
 *   and loop overhead included; they are the same for both sides at equal
 *   batch size, and small next to anything slower than ~1 µs);
 * - p99: the 99th percentile of the latency samples of that round.
 *
 * Latency samples. Each sample is one `process.hrtime.bigint()` interval.
 * Reading the clock costs ~50–100 ns, which would swamp a sub-microsecond
 * operation (a `Map` lookup is ~50 ns), so such operations are timed in
 * batches: B operations run back to back between two clock reads, and the
 * sample is that interval divided by B (the batch's mean per-op latency). The
 * p99 of batch means is NOT the p99 of single operations: averaging B ops
 * smooths out a single slow one (a GC pause spread over B ops), so for
 * batched sides the p99 is a lower bound of the true per-op p99. The table
 * marks those figures with `~` and the batch size is printed under it.
 * Batch size is chosen per side from a calibration run after the warmup: B = 1 (every
 * operation timed on its own) when one op takes at least `minTimedNs`
 * (default 1 µs), otherwise the smallest B whose batch takes about that long.
 *
 * Concurrency. With `concurrency: N > 1`, N workers run at once (each awaits
 * its own operation, then starts the next: N operations in flight, joined with
 * `Promise.all`), sharing the round's time budget. Every operation is timed on
 * its own (B = 1): a batch would include other workers' turns. Its latency is
 * from start to completion, so it includes waiting behind the other N − 1 —
 * the latency a caller sees under that load. Concurrent operations should be
 * async: a worker whose op never returns a promise never yields, and runs the
 * whole round alone.
 *
 * An operation may be sync or async: a returned thenable is awaited, anything
 * else is not (so a sync op pays no microtask per call). It receives a
 * counter, per side, that keeps increasing across warmup and rounds, for
 * operations that need a fresh key each time.
 */

export type Op = (i: number) => unknown

export interface Case {
  /** Row label. */
  readonly name: string
  readonly ours: Op
  readonly baseline: Op
  /** Operations in flight at once (default 1: sequential). */
  readonly concurrency?: number
  /** Force a batch size (sequential only); default: calibrated per side. */
  readonly batch?: number
  /**
   * The lowest acceptable ratio (ours/baseline ops/s), from the issue that set
   * it; the table marks a row whose median ratio is under it. None: a
   * reference or policy row, printed without a mark.
   */
  readonly aim?: number
}

export interface RunOptions {
  /** Measured rounds; each runs ours and the baseline once (default 7). */
  readonly rounds?: number
  /** Time budget per side per round (default 300 ms). */
  readonly roundMs?: number
  /** Untimed run per side before the rounds, for the JIT (default 200 ms). */
  readonly warmupMs?: number
  /** Below this op duration, time in batches (default 1,000 ns). */
  readonly minTimedNs?: number
}

export interface SideResult {
  readonly opsPerSec: number
  readonly p99Micros: number
  readonly batch: number
}

export interface Row {
  readonly name: string
  readonly concurrency: number
  readonly ours: SideResult
  readonly baseline: SideResult
  /** Median of the per-round ratios ours/baseline ops/s. */
  readonly ratio: number
  readonly ratioMin: number
  readonly ratioMax: number
  readonly aim?: number
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function"

const now = (): bigint => process.hrtime.bigint()

/** The `q` quantile (0..1) of sorted samples, nearest rank. */
const quantile = (sorted: Float64Array, q: number): number => {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank] as number
}

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1
    ? sorted[mid] as number
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

/** A growable buffer of samples (ns), reused across rounds. */
class Samples {
  private buffer = new Float64Array(1 << 16)
  length = 0

  push(value: number): void {
    if (this.length === this.buffer.length) {
      const next = new Float64Array(this.buffer.length * 2)
      next.set(this.buffer)
      this.buffer = next
    }
    this.buffer[this.length++] = value
  }

  reset(): void {
    this.length = 0
  }

  sorted(): Float64Array {
    return this.buffer.slice(0, this.length).sort()
  }
}

interface Side {
  readonly op: Op
  counter: number
  batch: number
  readonly samples: Samples
}

interface Measured {
  readonly ops: number
  readonly elapsedNs: number
}

/** Run `side` for `budgetNs`, sequentially, recording one sample per batch. */
const runSequential = async (side: Side, budgetNs: bigint, record: boolean): Promise<Measured> => {
  const { op, batch } = side
  let ops = 0
  const start = now()
  const deadline = start + budgetNs
  let t0 = start
  for (;;) {
    for (let k = 0; k < batch; k++) {
      const result = op(side.counter++)
      if (isThenable(result)) await result
    }
    const t1 = now()
    ops += batch
    if (record) side.samples.push(Number(t1 - t0) / batch)
    if (t1 >= deadline) return { ops, elapsedNs: Number(t1 - start) }
    t0 = t1
  }
}

/** Run `side` for `budgetNs` with `concurrency` workers, one sample per operation. */
const runConcurrent = async (side: Side, budgetNs: bigint, concurrency: number, record: boolean): Promise<Measured> => {
  const { op } = side
  let ops = 0
  const start = now()
  const deadline = start + budgetNs
  const worker = async (): Promise<void> => {
    for (;;) {
      const t0 = now()
      const result = op(side.counter++)
      if (isThenable(result)) await result
      const t1 = now()
      ops++
      if (record) side.samples.push(Number(t1 - t0))
      if (t1 >= deadline) return
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { ops, elapsedNs: Number(now() - start) }
}

const runSide = (side: Side, budgetNs: bigint, concurrency: number, record: boolean): Promise<Measured> =>
  concurrency > 1 ? runConcurrent(side, budgetNs, concurrency, record) : runSequential(side, budgetNs, record)

/** The batch size for a side: 1 unless one op is shorter than `minTimedNs`. */
const calibrate = async (side: Side, minTimedNs: number): Promise<number> => {
  side.batch = 1
  const probe = await runSequential(side, 20_000_000n, false)
  const perOp = probe.elapsedNs / Math.max(1, probe.ops)
  return perOp >= minTimedNs ? 1 : Math.ceil(minTimedNs / Math.max(1, perOp))
}

/** Measure one case: warmup, calibration, then `rounds` interleaved rounds. */
export const runCase = async (c: Case, options: RunOptions = {}): Promise<Row> => {
  const rounds = options.rounds ?? 7
  const roundNs = BigInt(Math.round((options.roundMs ?? 300) * 1e6))
  const warmupNs = BigInt(Math.round((options.warmupMs ?? 200) * 1e6))
  const minTimedNs = options.minTimedNs ?? 1_000
  const concurrency = Math.max(1, Math.floor(c.concurrency ?? 1))

  const ours: Side = { op: c.ours, counter: 0, batch: 1, samples: new Samples() }
  const baseline: Side = { op: c.baseline, counter: 0, batch: 1, samples: new Samples() }

  // Warm up first (batch 1), so calibration sees JIT-compiled code.
  for (const side of [ours, baseline]) {
    await runSide(side, warmupNs, concurrency, false)
    if (concurrency === 1) side.batch = c.batch ?? await calibrate(side, minTimedNs)
  }

  const results = { ours: [] as Array<SideResult>, baseline: [] as Array<SideResult> }
  const ratios: Array<number> = []
  for (let round = 0; round < rounds; round++) {
    const order: Array<"ours" | "baseline"> = round % 2 === 0 ? ["ours", "baseline"] : ["baseline", "ours"]
    const perRound: Partial<Record<"ours" | "baseline", SideResult>> = {}
    for (const which of order) {
      const side = which === "ours" ? ours : baseline
      side.samples.reset()
      const measured = await runSide(side, roundNs, concurrency, true)
      const result: SideResult = {
        opsPerSec: measured.ops / (measured.elapsedNs / 1e9),
        p99Micros: quantile(side.samples.sorted(), 0.99) / 1e3,
        batch: side.batch
      }
      perRound[which] = result
      results[which].push(result)
    }
    ratios.push((perRound.ours as SideResult).opsPerSec / (perRound.baseline as SideResult).opsPerSec)
  }

  const summarize = (list: ReadonlyArray<SideResult>, batch: number): SideResult => ({
    opsPerSec: median(list.map((r) => r.opsPerSec)),
    p99Micros: median(list.map((r) => r.p99Micros)),
    batch
  })
  return {
    name: c.name,
    concurrency,
    ours: summarize(results.ours, ours.batch),
    baseline: summarize(results.baseline, baseline.batch),
    ratio: median(ratios),
    ratioMin: Math.min(...ratios),
    ratioMax: Math.max(...ratios),
    ...(c.aim === undefined ? {} : { aim: c.aim })
  }
}

/** Run cases one after another (never two at once: they would compete for the CPU). */
export const runCases = async (cases: ReadonlyArray<Case>, options: RunOptions = {}): Promise<Array<Row>> => {
  const rows: Array<Row> = []
  for (const c of cases) rows.push(await runCase(c, options))
  return rows
}

const formatRate = (opsPerSec: number): string =>
  opsPerSec >= 100 ? Math.round(opsPerSec).toLocaleString("en-US") : opsPerSec.toFixed(1)

const formatMicros = (side: SideResult): string => {
  const value = side.p99Micros
  const text = value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)
  return side.batch > 1 ? `~${text}` : text
}

const formatRatio = (ratio: number): string => ratio >= 10 ? ratio.toFixed(1) : ratio.toFixed(2)

/** Whether a row is under its aim (rows without an aim never are). */
export const underAim = (row: Pick<Row, "ratio" | "aim">): boolean => row.aim !== undefined && row.ratio < row.aim

/** The aim cell: `≥ 0.50 ok`, `≥ 0.50 UNDER`, or `-` for a row without one. */
const formatAim = (row: Pick<Row, "ratio" | "aim">): string =>
  row.aim === undefined ? "-" : `≥ ${formatRatio(row.aim)} ${underAim(row) ? "UNDER" : "ok"}`

/** A Markdown table from a header and rows of cells: the first column left-aligned, the rest right-aligned. */
export const markdownTable = (header: ReadonlyArray<string>, body: ReadonlyArray<ReadonlyArray<string>>): Array<string> => {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((cells) => (cells[i] as string).length)))
  const line = (cells: ReadonlyArray<string>) =>
    `| ${cells.map((cell, i) => i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number)).join(" | ")} |`
  const separator = `|${widths.map((w, i) => i === 0 ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`).join("|")}|`
  return [line(header), separator, ...body.map(line)]
}

/** A row's name, with its concurrency when it has one. */
const label = (row: { readonly name: string; readonly concurrency?: number }): string =>
  row.concurrency !== undefined && row.concurrency > 1 ? `${row.name} (${row.concurrency} in flight)` : row.name

/** One line on the rows under their aim: how many, which. */
export const aimSummary = (rows: ReadonlyArray<Pick<Row, "name" | "ratio" | "aim"> & { readonly concurrency?: number }>): string => {
  const withAim = rows.filter((row) => row.aim !== undefined)
  if (withAim.length === 0) return "No row here has an aim (reference or policy rows)."
  const under = withAim.filter(underAim)
  return under.length === 0
    ? `Aims: all ${withAim.length} rows with an aim meet it.`
    : `Aims: ${under.length} of ${withAim.length} rows UNDER their aim: ${under.map(label).join("; ")}.`
}

/**
 * The results as a Markdown table: per row ours, the baseline, the ratio, and
 * the aim (marked `UNDER` when the median ratio is below it); then a note on
 * batched p99 figures and a line naming the rows under their aim.
 */
export const formatTable = (title: string, rows: ReadonlyArray<Row>, options: RunOptions = {}): string => {
  const header = [
    "operation",
    "ours ops/s",
    "ours p99 µs",
    "baseline ops/s",
    "baseline p99 µs",
    "ratio (ours/baseline ops/s)",
    "ratio min–max",
    "aim"
  ]
  const body = rows.map((row) => [
    label(row),
    formatRate(row.ours.opsPerSec),
    formatMicros(row.ours),
    formatRate(row.baseline.opsPerSec),
    formatMicros(row.baseline),
    formatRatio(row.ratio),
    `${formatRatio(row.ratioMin)}–${formatRatio(row.ratioMax)}`,
    formatAim(row)
  ])

  const batched = rows.flatMap((row) => [
    ...(row.ours.batch > 1 ? [`${row.name}: ours B=${row.ours.batch}`] : []),
    ...(row.baseline.batch > 1 ? [`${row.name}: baseline B=${row.baseline.batch}`] : [])
  ])
  const rounds = options.rounds ?? 7
  const roundMs = options.roundMs ?? 300
  return [
    `## ${title}`,
    "",
    ...markdownTable(header, body),
    "",
    `Medians of ${rounds} interleaved rounds of ${roundMs} ms per side; ratio = median of per-round ratios (> 1: ours faster).`,
    ...(batched.length === 0 ? [] : [
      `~ p99 of per-batch mean latency (B ops per clock read): a lower bound of the per-op p99. ${batched.join("; ")}.`
    ]),
    aimSummary(rows)
  ].join("\n")
}

/** A bench module: `run` measures and returns its printed section (tables and notes). */
export interface BenchModule {
  readonly name: string
  readonly run: () => Promise<string>
}

const modules: Array<BenchModule> = []

/** Called by each bench module when imported; `bench/index.ts` runs them in import order. */
export const register = (module: BenchModule): void => {
  modules.push(module)
}

export const registered = (): ReadonlyArray<BenchModule> => modules
