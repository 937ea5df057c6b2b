/**
 * Effect's metric snapshot in the Prometheus text exposition format
 * (version 0.0.4): one family per metric name with its `# HELP` and `# TYPE`
 * lines, then its samples. Counters are `counter` (a counter not declared
 * incremental may go down: `gauge`), gauges `gauge`, histograms `histogram`
 * (`_bucket` with cumulative counts and `le`, then `_sum` and `_count`),
 * summaries `summary` (`quantile`, `_sum`, `_count`), frequencies a
 * `counter` with the word in a `key` label.
 */
import { MetricKeyType, type MetricPair, MetricState, Option } from "effect"

/** The `Content-Type` of the rendering. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

/** A metric or label name with every character Prometheus does not allow replaced by `_`. */
const sanitizeName = (name: string, allowColon: boolean): string => {
  const cleaned = name.replace(allowColon ? /[^a-zA-Z0-9_:]/g : /[^a-zA-Z0-9_]/g, "_")
  return /^[0-9]/.test(cleaned) ? `_${cleaned}` : cleaned === "" ? "_" : cleaned
}

/** A label value inside double quotes: backslash, double quote and line feed escaped. */
const escapeLabelValue = (value: string): string => value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")

/** A `# HELP` text: backslash and line feed escaped. */
const escapeHelp = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

/** A sample value as Prometheus writes it (`+Inf`, `-Inf`, `NaN`). */
const formatValue = (value: number | bigint): string => {
  if (typeof value === "bigint") return value.toString()
  if (Number.isNaN(value)) return "NaN"
  if (value === Number.POSITIVE_INFINITY) return "+Inf"
  if (value === Number.NEGATIVE_INFINITY) return "-Inf"
  return String(value)
}

type Labels = ReadonlyArray<readonly [string, string]>

const formatLabels = (labels: Labels): string =>
  labels.length === 0 ? "" : `{${labels.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(",")}}`

const sample = (name: string, labels: Labels, value: number | bigint): string => `${name}${formatLabels(labels)} ${formatValue(value)}`

type Family = "counter" | "gauge" | "histogram" | "summary"

const familyOf = (pair: MetricPair.MetricPair.Untyped): Family | undefined => {
  const keyType = pair.metricKey.keyType
  if (MetricKeyType.isCounterKey(keyType)) return keyType.incremental ? "counter" : "gauge"
  if (MetricKeyType.isGaugeKey(keyType)) return "gauge"
  if (MetricKeyType.isHistogramKey(keyType)) return "histogram"
  if (MetricKeyType.isSummaryKey(keyType)) return "summary"
  if (MetricKeyType.isFrequencyKey(keyType)) return "counter"
  return undefined
}

/** The samples of one series. */
const samplesOf = (name: string, labels: Labels, state: MetricState.MetricState.Untyped): Array<string> => {
  if (MetricState.isCounterState(state)) return [sample(name, labels, state.count)]
  if (MetricState.isGaugeState(state)) return [sample(name, labels, state.value)]
  if (MetricState.isFrequencyState(state)) {
    return [...state.occurrences].map(([word, count]) => sample(name, [...labels, ["key", word]], count))
  }
  if (MetricState.isHistogramState(state)) {
    const buckets = state.buckets.map(([boundary, count]) => sample(`${name}_bucket`, [...labels, ["le", formatValue(boundary)]], count))
    // Effect's boundaries end with +Inf; a histogram without it still needs the bucket Prometheus requires.
    const last = state.buckets[state.buckets.length - 1]
    if (last === undefined || last[0] !== Number.POSITIVE_INFINITY) buckets.push(sample(`${name}_bucket`, [...labels, ["le", "+Inf"]], state.count))
    return [...buckets, sample(`${name}_sum`, labels, state.sum), sample(`${name}_count`, labels, state.count)]
  }
  if (MetricState.isSummaryState(state)) {
    const quantiles = state.quantiles.map(([quantile, value]) =>
      sample(name, [...labels, ["quantile", formatValue(quantile)]], Option.getOrElse(value, () => Number.NaN)))
    return [...quantiles, sample(`${name}_sum`, labels, state.sum), sample(`${name}_count`, labels, state.count)]
  }
  return []
}

interface FamilyLines {
  readonly type: Family
  help: string | undefined
  readonly samples: Array<string>
}

/**
 * Render a metric snapshot (`Metric.snapshot`). Families come sorted by
 * name, their series in snapshot order. A series whose name another family
 * of a different type already took cannot be exposed under it: it is left
 * out, with a comment line saying so.
 */
export const renderPrometheus = (snapshot: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, FamilyLines>()
  const conflicts: Array<string> = []
  for (const pair of snapshot) {
    const type = familyOf(pair)
    if (type === undefined) continue
    const name = sanitizeName(pair.metricKey.name, true)
    const labels: Labels = pair.metricKey.tags.map((label) => [sanitizeName(label.key, false), label.value] as const)
    let family = families.get(name)
    if (family === undefined) {
      family = { type, help: undefined, samples: [] }
      families.set(name, family)
    } else if (family.type !== type) {
      conflicts.push(`# ${name}: a ${type} series is not exposed (the name is a ${family.type})`)
      continue
    }
    if (family.help === undefined && Option.isSome(pair.metricKey.description)) family.help = pair.metricKey.description.value
    family.samples.push(...samplesOf(name, labels, pair.metricState))
  }
  const lines: Array<string> = []
  for (const [name, family] of [...families].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)) {
    if (family.help !== undefined) lines.push(`# HELP ${name} ${escapeHelp(family.help)}`)
    lines.push(`# TYPE ${name} ${family.type}`, ...family.samples)
  }
  lines.push(...conflicts)
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`
}
