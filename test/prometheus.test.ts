/**
 * The Prometheus text rendering of Effect's metric snapshot: one family per
 * name with HELP and TYPE, counters, gauges, histograms (cumulative
 * `_bucket`s with `le`, `+Inf`, `_sum`, `_count`), summaries, frequencies;
 * escaped label values and help texts; names Prometheus would refuse made
 * legal; every line in the exposition grammar.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric, MetricBoundaries, Option } from "effect"
import { renderPrometheus } from "../src/internal/prometheus.ts"

let names = 0
/** A metric name no other test records under. */
const fresh = (stem: string) => `test_prometheus_${stem}_${++names}`

/** The rendering of the metrics whose names start with `prefix` (the registry is process-wide). */
const render = (prefix: string) =>
  Effect.map(Metric.snapshot, (pairs) => renderPrometheus(pairs.filter((pair) => pair.metricKey.name.startsWith(prefix))))

/** One line of the text format (0.0.4): a comment, or `name{labels} value`. */
const SAMPLE = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\\\|\\"|\\n)*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\\\|\\"|\\n)*")*\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN)$/
const wellFormed = (text: string) => {
  expect(text.endsWith("\n")).toBe(true)
  for (const line of text.trimEnd().split("\n")) {
    if (line.startsWith("#")) expect(line).toMatch(/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*|^# .*/)
    else expect(line).toMatch(SAMPLE)
  }
}

describe("the Prometheus text rendering", () => {
  it.effect("a counter with HELP, TYPE and labels; a counter that may go down is a gauge", () =>
    Effect.gen(function*() {
      const name = fresh("requests_total")
      const counter = Metric.counter(name, { description: "Requests served", incremental: true })
      yield* Metric.incrementBy(Metric.tagged(counter, "route", "/token"), 3)
      yield* Metric.increment(Metric.tagged(counter, "route", "/mcp"))
      const down = fresh("balance")
      yield* Metric.incrementBy(Metric.counter(down), -2)
      const text = yield* render(name)
      wellFormed(text)
      expect(text).toBe([
        `# HELP ${name} Requests served`,
        `# TYPE ${name} counter`,
        `${name}{route="/token"} 3`,
        `${name}{route="/mcp"} 1`,
        ""
      ].join("\n"))
      expect(yield* render(down)).toBe(`# TYPE ${down} gauge\n${down} -2\n`)
    }))

  it.effect("a gauge", () =>
    Effect.gen(function*() {
      const name = fresh("open_streams")
      yield* Metric.set(Metric.gauge(name, { description: "Streams open now" }), 7)
      const text = yield* render(name)
      wellFormed(text)
      expect(text).toBe(`# HELP ${name} Streams open now\n# TYPE ${name} gauge\n${name} 7\n`)
    }))

  it.effect("a histogram: cumulative buckets with le, +Inf, _sum and _count", () =>
    Effect.gen(function*() {
      const name = fresh("duration_seconds")
      const histogram = Metric.histogram(name, MetricBoundaries.fromIterable([0.001, 0.01, 0.1]), "How long")
      for (const value of [0.0005, 0.005, 0.005, 0.05, 3]) yield* Metric.update(Metric.tagged(histogram, "op", "get"), value)
      const text = yield* render(name)
      wellFormed(text)
      expect(text).toBe([
        `# HELP ${name} How long`,
        `# TYPE ${name} histogram`,
        `${name}_bucket{op="get",le="0.001"} 1`,
        `${name}_bucket{op="get",le="0.01"} 3`,
        `${name}_bucket{op="get",le="0.1"} 4`,
        `${name}_bucket{op="get",le="+Inf"} 5`,
        `${name}_sum{op="get"} ${0.0005 + 0.005 + 0.005 + 0.05 + 3}`,
        `${name}_count{op="get"} 5`,
        ""
      ].join("\n"))
    }))

  it.effect("a summary and a frequency", () =>
    Effect.gen(function*() {
      const summary = fresh("latency")
      const s = Metric.summary({ name: summary, maxAge: "1 hour", maxSize: 100, error: 0.01, quantiles: [0.5, 0.99] })
      for (const value of [1, 2, 3]) yield* Metric.update(s, value)
      const summaryText = yield* render(summary)
      wellFormed(summaryText)
      // The quantiles are Effect's own estimates: the rendering shows what the summary holds.
      const state = yield* Metric.value(s)
      const quantile = (q: number) => String(Option.getOrThrow(state.quantiles.find(([at]) => at === q)?.[1] ?? Option.none()))
      expect(summaryText).toBe([
        `# TYPE ${summary} summary`,
        `${summary}{quantile="0.5"} ${quantile(0.5)}`,
        `${summary}{quantile="0.99"} ${quantile(0.99)}`,
        `${summary}_sum 6`,
        `${summary}_count 3`,
        ""
      ].join("\n"))

      const frequency = fresh("outcomes")
      const f = Metric.frequency(frequency)
      for (const word of ["ok", "ok", "refused"]) yield* Metric.update(f, word)
      const frequencyText = yield* render(frequency)
      wellFormed(frequencyText)
      expect(frequencyText).toBe(`# TYPE ${frequency} counter\n${frequency}{key="ok"} 2\n${frequency}{key="refused"} 1\n`)
    }))

  it.effect("escapes label values and help texts; makes names and label names legal", () =>
    Effect.gen(function*() {
      const stem = fresh("escape")
      const name = `${stem}.with-dots`
      const counter = Metric.counter(name, { description: "line one\nline two \\ end", incremental: true })
      yield* Metric.increment(Metric.tagged(counter, "weird-label", "a \"quoted\" \\ value\nnext"))
      const text = yield* render(stem)
      wellFormed(text)
      const legal = `${stem}_with_dots`
      expect(text).toBe([
        `# HELP ${legal} line one\\nline two \\\\ end`,
        `# TYPE ${legal} counter`,
        `${legal}{weird_label="a \\"quoted\\" \\\\ value\\nnext"} 1`,
        ""
      ].join("\n"))
    }))

  it.effect("one family per name, sorted; a series whose name another type took is left out with a comment", () =>
    Effect.gen(function*() {
      const prefix = fresh("family")
      yield* Metric.increment(Metric.counter(`${prefix}_b`, { incremental: true }))
      yield* Metric.increment(Metric.tagged(Metric.counter(`${prefix}_a`, { incremental: true }), "x", "1"))
      yield* Metric.set(Metric.gauge(`${prefix}_a`), 5)
      const text = yield* render(prefix)
      wellFormed(text)
      const lines = text.trimEnd().split("\n")
      expect(lines.filter((line) => line.startsWith("# TYPE"))).toEqual([`# TYPE ${prefix}_a counter`, `# TYPE ${prefix}_b counter`])
      expect(lines).toContain(`# ${prefix}_a: a gauge series is not exposed (the name is a counter)`)
    }))

  it("renders nothing for an empty snapshot", () => {
    expect(renderPrometheus([])).toBe("")
  })
})
