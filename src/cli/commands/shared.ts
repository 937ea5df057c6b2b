/** What the commands share: the common options, opening the store, the progress display, tables. */
import { Options } from "@effect/cli"
import { DateTime, Duration, Effect, Layer, Option } from "effect"
import { InvalidInput } from "../errors.ts"
import { CliOutput, line } from "../output.ts"
import { DEFAULT_LINE_INTERVAL, makeProgress } from "../progress.ts"
import { cliCrypto, openStore, resolveStore } from "../stores.ts"

/** What `--store` accepts. */
export const STORE_HELP = "The store to work on: sqlite:PATH, file:PATH or redis://[user:password@]HOST:PORT/DB[?prefix=PREFIX] " +
  "(rediss:// for TLS). Default: the server's settings (STORE, DATA_DIR, SQLITE_PATH, RS_TOKENS_FILE, REDIS_URL, REDIS_KEY_PREFIX)."

/** `--store`: the store to work on (default: the server's settings). */
export const store = Options.text("store").pipe(Options.withPseudoName("STORE"), Options.withDescription(STORE_HELP), Options.optional)

/** `--batch-size`: records per page and per atomic write. */
export const batchSize = Options.integer("batch-size").pipe(
  Options.withPseudoName("N"),
  Options.withDescription("Records per page read, and per atomic write (default 500)."),
  Options.withDefault(500)
)

/** A positive integer option, or `InvalidInput` naming it. */
export const positive = (name: string, value: number) =>
  Number.isSafeInteger(value) && value > 0 ? Effect.succeed(value) : Effect.fail(new InvalidInput({ description: `${name} must be a positive integer` }))

/** Run `body` on the store named (or the server's), with the server's keys. */
export const onStore = <A, E, R>(named: Option.Option<string>, body: Effect.Effect<A, E, R>) =>
  Effect.flatMap(resolveStore(named), (spec) =>
    Effect.provide(body, openStore(spec, true).pipe(Layer.provideMerge(cliCrypto))))

/** `--progress-interval`: how often a plain progress line is printed. */
export const progressInterval = Options.text("progress-interval").pipe(
  Options.withPseudoName("DURATION"),
  Options.withDescription(
    "When stderr is not a terminal, print a progress line at most this often (default \"2 seconds\"; \"0 seconds\": after every batch)."
  ),
  Options.withDefault(DEFAULT_LINE_INTERVAL)
)

/** A duration option in milliseconds, or `InvalidInput` naming it. */
export const durationOf = (name: string, text: string) =>
  Option.match(Duration.decodeUnknown(text), {
    onNone: () => Effect.fail(new InvalidInput({ description: `${name} must be a duration such as "2 seconds" or "30 minutes"` })),
    onSome: (duration) => Effect.succeed(Duration.toMillis(duration))
  })

/** The progress display, for engines that take one. */
export const progressFactory = (interval: string) =>
  Effect.gen(function*() {
    const output = yield* CliOutput
    const lineMillis = yield* durationOf("--progress-interval", interval)
    return (label: string, total: number) => Effect.provideService(makeProgress(label, total, lineMillis), CliOutput, output)
  })

/** An instant as ISO 8601, to the second. */
export const iso = (millis: number): string => DateTime.formatIso(DateTime.unsafeMake(millis)).replace(/\.\d{3}Z$/, "Z")

/** Rows as aligned columns; the columns listed in `right` (numbers) aligned right. */
export const table = (rows: ReadonlyArray<ReadonlyArray<string>>, right: ReadonlyArray<number> = []): ReadonlyArray<string> => {
  const widths = rows.reduce<Array<number>>((w, row) => row.map((cell, i) => Math.max(w[i] ?? 0, cell.length)), [])
  return rows.map((row) =>
    row.map((cell, i) => right.includes(i) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)).join("  ").trimEnd()
  )
}

/** Print lines on stdout. */
export const printLines = (lines: ReadonlyArray<string>) => Effect.forEach(lines, line, { discard: true })

/** A parent command run alone: name the subcommands. */
export const needSubcommand = (name: string, choices: string) =>
  Effect.fail(new InvalidInput({ description: `${name}: choose a subcommand (${choices}); see ${name} --help` }))

