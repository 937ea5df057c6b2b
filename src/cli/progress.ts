/**
 * The progress display of a long run: records done of the total, rate and
 * time left. On a terminal one line redrawn in place (at most ten times a
 * second); otherwise plain lines, one every few seconds, for logs.
 */
import { Clock, Effect } from "effect"
import { CliOutput } from "./output.ts"

/** A running display. */
export interface Progress {
  /** `n` more records done; `detail` (counts of what happened so far) is shown beside them. Called between batches. */
  readonly advance: (n: number, detail?: string) => Effect.Effect<void>
  /** The final line (the total may have changed while running: records written meanwhile). */
  readonly finish: Effect.Effect<void>
}

/** `1,234,567` */
export const formatCount = (n: number): string => Math.round(n).toLocaleString("en-US")

/** `0:42`, `3:05`, `1:02:03` */
export const formatDuration = (millis: number): string => {
  const total = Math.max(0, Math.round(millis / 1000))
  const hours = Math.floor(total / 3600)
  const minutes = Math.floor((total % 3600) / 60)
  const seconds = String(total % 60).padStart(2, "0")
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `${minutes}:${seconds}`
}

const BAR = 24
const REDRAW_MILLIS = 100

/**
 * Let the event loop run (a macrotask): the stores' work can be synchronous
 * for a long stretch (better-sqlite3), and Effect yields between steps only
 * to microtasks, so a Ctrl-C would otherwise wait for the end of the run.
 */
const letSignalsIn: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/** How often a plain line is printed when stderr is not a terminal (`--progress-interval`). */
export const DEFAULT_LINE_INTERVAL = "2 seconds"

/** Start a display of `label` over `total` records; plain lines at most every `lineMillis` (0: every batch). */
export const makeProgress = (label: string, total: number, lineMillis: number): Effect.Effect<Progress, never, CliOutput> =>
  Effect.gen(function*() {
    const output = yield* CliOutput
    const started = yield* Clock.currentTimeMillis
    let done = 0
    let detail = ""
    let lastDrawn = Number.NEGATIVE_INFINITY

    const render = (now: number): string => {
      const elapsed = Math.max(1, now - started)
      const rate = (done * 1000) / elapsed
      const expected = Math.max(total, done)
      const left = expected - done
      const eta = rate > 0 ? formatDuration((left / rate) * 1000) : "?"
      const share = expected === 0 ? 1 : done / expected
      const counts = `${formatCount(done)}/${formatCount(expected)} records (${Math.floor(share * 100)}%)`
      const pace = `${formatCount(rate)}/s, ETA ${eta}`
      if (!output.interactive) return `${label}: ${counts}, ${pace}${detail === "" ? "" : `, ${detail}`}`
      const filled = Math.round(share * BAR)
      return `${label} [${"#".repeat(filled)}${".".repeat(BAR - filled)}] ${counts}  ${pace}${detail === "" ? "" : `  ${detail}`}`
    }

    const draw = (now: number, final: boolean) =>
      output.interactive
        ? output.err(`\r\x1b[2K${render(now)}${final ? "\n" : ""}`)
        : output.err(`${render(now)}\n`)

    return {
      advance: (n, next) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          done += n
          if (next !== undefined) detail = next
          if (now - lastDrawn < (output.interactive ? REDRAW_MILLIS : lineMillis)) return letSignalsIn
          lastDrawn = now
          return Effect.zipRight(draw(now, false), letSignalsIn)
        }),
      finish: Effect.flatMap(Clock.currentTimeMillis, (now) => draw(now, true))
    }
  })
