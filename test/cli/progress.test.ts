/**
 * The progress display: on a terminal one line redrawn in place with the
 * count, a bar, the rate and the time left; otherwise plain lines at most
 * once per interval. Time from `TestClock`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import { CliOutput } from "../../src/cli/output.ts"
import { formatDuration, makeProgress } from "../../src/cli/progress.ts"

const recording = (interactive: boolean) => {
  const written: Array<string> = []
  const layer = Layer.succeed(CliOutput, {
    out: () => Effect.void,
    err: (text) => Effect.sync(() => void written.push(text)),
    interactive
  })
  return { written, layer }
}

describe("progress display", () => {
  it.effect("on a terminal: one line redrawn in place, with rate and ETA, at most every 100 ms", () => {
    const { layer, written } = recording(true)
    return Effect.gen(function*() {
      const progress = yield* makeProgress("rekey", 10_000, 2_000)
      yield* TestClock.adjust("1 second")
      yield* progress.advance(1_000, "re-sealed 400")
      yield* progress.advance(10) // within 100 ms of the last draw: not drawn
      yield* TestClock.adjust("1 second")
      yield* progress.advance(990, "re-sealed 800")
      yield* progress.finish
      expect(written).toHaveLength(3)
      expect(written[0]).toBe("\r\x1b[2Krekey [##......................] 1,000/10,000 records (10%)  1,000/s, ETA 0:09  re-sealed 400")
      expect(written[1]).toBe("\r\x1b[2Krekey [#####...................] 2,000/10,000 records (20%)  1,000/s, ETA 0:08  re-sealed 800")
      expect(written[2]).toMatch(/^\r\x1b\[2Krekey .* 2,000\/10,000 records \(20%\).*\n$/)
    }).pipe(Effect.provide(layer))
  })

  it.effect("not a terminal: plain lines, at most one per interval, and a last one", () => {
    const { layer, written } = recording(false)
    return Effect.gen(function*() {
      const progress = yield* makeProgress("migrate", 300, 2_000)
      for (let i = 0; i < 30; i++) {
        yield* TestClock.adjust("100 millis")
        yield* progress.advance(10)
      }
      yield* progress.finish
      expect(written).toEqual([
        "migrate: 10/300 records (3%), 100/s, ETA 0:03\n",
        "migrate: 210/300 records (70%), 100/s, ETA 0:01\n",
        "migrate: 300/300 records (100%), 100/s, ETA 0:00\n"
      ])
    }).pipe(Effect.provide(layer))
  })

  it.effect("more records than counted (written meanwhile): the total follows the count", () => {
    const { layer, written } = recording(false)
    return Effect.gen(function*() {
      const progress = yield* makeProgress("rekey", 10, 0)
      yield* TestClock.adjust("1 second")
      yield* progress.advance(15)
      expect(written).toEqual(["rekey: 15/15 records (100%), 15/s, ETA 0:00\n"])
    }).pipe(Effect.provide(layer))
  })

  it("durations read as m:ss or h:mm:ss", () => {
    expect([formatDuration(0), formatDuration(9_400), formatDuration(185_000), formatDuration(3_723_000)]).toEqual(["0:00", "0:09", "3:05", "1:02:03"])
  })
})
