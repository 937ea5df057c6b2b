/**
 * Reading a `/metrics` scrape as Prometheus would: the exposition checked
 * line by line (0.0.4 text format), the samples parsed into a map of
 * `name{label="value",...}` (labels sorted) -> value. Used by the e2e tests
 * and the load bench.
 */

/** A parsed scrape: each sample's value by its series key, and each family's type. */
export interface Scrape {
  readonly samples: ReadonlyMap<string, number>
  readonly types: ReadonlyMap<string, string>
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*"
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\\\\\|\\\\"|\\\\n)*"`
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(${LABEL}(?:,${LABEL})*)\\})? (-?[0-9.]+(?:e[+-]?[0-9]+)?|\\+Inf|-Inf|NaN)$`)
const LABEL_PAIR = new RegExp(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\\\\n]|\\\\\\\\|\\\\"|\\\\n)*)"`, "g")
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"])

const unescape = (value: string) => value.replace(/\\(\\|"|n)/g, (_, c: string) => c === "n" ? "\n" : c)

/** The key of a series: its name and its labels sorted by name. */
export const seriesKey = (name: string, labels: Readonly<Record<string, string>> = {}): string => {
  const pairs = Object.entries(labels).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
  return pairs.length === 0 ? name : `${name}{${pairs.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(",")}}`
}

/** Parse a scrape; throws at the first line that is not in the text format, or a sample before its family's TYPE. */
export const parseScrape = (text: string): Scrape => {
  const samples = new Map<string, number>()
  const types = new Map<string, string>()
  if (text !== "" && !text.endsWith("\n")) throw new Error("the exposition does not end with a line feed")
  for (const line of text.split("\n")) {
    if (line === "") continue
    if (line.startsWith("# TYPE ")) {
      const parts = line.slice("# TYPE ".length).split(" ")
      const [name, type] = parts
      if (parts.length !== 2 || name === undefined || type === undefined || !new RegExp(`^${NAME}$`).test(name) || !TYPES.has(type)) {
        throw new Error(`bad TYPE line: ${line}`)
      }
      if (types.has(name)) throw new Error(`a second TYPE line for ${name}`)
      types.set(name, type)
      continue
    }
    if (line.startsWith("#")) continue
    const match = SAMPLE.exec(line)
    if (match === null) throw new Error(`not a sample line: ${line}`)
    const [, name = "", labelText, value = ""] = match
    const family = [...types.keys()].find((f) => name === f || name.startsWith(`${f}_`))
    if (family === undefined) throw new Error(`a sample before its TYPE line: ${line}`)
    const labels: Record<string, string> = {}
    for (const pair of (labelText ?? "").matchAll(LABEL_PAIR)) labels[pair[1] ?? ""] = unescape(pair[2] ?? "")
    const key = seriesKey(name, labels)
    if (samples.has(key)) throw new Error(`a series appears twice: ${key}`)
    samples.set(key, value === "+Inf" ? Infinity : value === "-Inf" ? -Infinity : Number(value))
  }
  return { samples, types }
}

/** A sample's value (0 when the series is not in the scrape). */
export const sampleOf = (scrape: Scrape, name: string, labels: Readonly<Record<string, string>> = {}): number =>
  scrape.samples.get(seriesKey(name, labels)) ?? 0

/** Fetch and parse `url` (a `/metrics` endpoint); throws unless it answers 200 in the text format. */
export const scrape = async (url: string): Promise<Scrape> => {
  const response = await fetch(url)
  const text = await response.text()
  if (response.status !== 200) throw new Error(`GET ${url}: ${response.status} ${text.slice(0, 200)}`)
  const type = response.headers.get("content-type") ?? ""
  if (!type.startsWith("text/plain") || !type.includes("version=0.0.4")) throw new Error(`GET ${url}: content-type ${type}`)
  return parseScrape(text)
}
