/**
 * Where the tool writes: results on stdout, progress and diagnostics on
 * stderr (so a result can be piped while the progress stays on the terminal).
 */
import { Context, Effect, Layer } from "effect"

/** The tool's two output streams, and whether stderr is a terminal (progress redraws one line there). */
export class CliOutput extends Context.Tag("mcp-oauth-store/CliOutput")<CliOutput, CliOutput.Service>() {}

export declare namespace CliOutput {
  export interface Service {
    /** Write `text` to stdout as it is. */
    readonly out: (text: string) => Effect.Effect<void>
    /** Write `text` to stderr as it is. */
    readonly err: (text: string) => Effect.Effect<void>
    /** Whether stderr is a terminal. */
    readonly interactive: boolean
  }
}

/** Print one line on stdout. */
export const line = (text: string): Effect.Effect<void, never, CliOutput> =>
  Effect.flatMap(CliOutput, (output) => output.out(`${text}\n`))

/** The process's stdout and stderr. */
export const layerProcess: Layer.Layer<CliOutput> = Layer.sync(CliOutput, () => ({
  out: (text) => Effect.sync(() => void process.stdout.write(text)),
  err: (text) => Effect.sync(() => void process.stderr.write(text)),
  interactive: process.stderr.isTTY === true && process.env["TERM"] !== "dumb"
}))
