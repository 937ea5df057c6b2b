#!/usr/bin/env node
/**
 * `mcp-oauth-store`: the operator's command-line tool (see `commands/` and
 * `--help`). Exit codes: 0 done, 1 the work failed (store, keys,
 * verification), 2 input it cannot use (arguments, store names, settings),
 * 130 interrupted. Failures are one line on stderr, never with a secret.
 */
import { Command } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Exit, HashMap, Layer, List, Logger, Option } from "effect"
import { createRequire } from "node:module"
import { root } from "./commands/index.ts"
import { describeFailure, ExitCode } from "./errors.ts"
import { CliOutput, layerProcess } from "./output.ts"

const version = (): string => {
  try {
    const manifest: unknown = createRequire(import.meta.url)("../../package.json")
    return typeof manifest === "object" && manifest !== null && "version" in manifest && typeof manifest.version === "string"
      ? manifest.version
      : "unknown"
  } catch {
    return "unknown"
  }
}

/** Log lines (the stores' warnings, such as a stale lock taken over) as plain text on stderr. */
const stderrLogger = Logger.make(({ annotations, logLevel, message }) => {
  const text = List.toArray(List.fromIterable(Array.isArray(message) ? message : [message])).map(String).join(" ")
  const context = HashMap.toEntries(annotations).filter(([key]) => key !== "module").map(([key, value]) => ` ${key}=${String(value)}`).join("")
  process.stderr.write(`${logLevel.label.toLowerCase()}: ${text}${context}\n`)
})

const cli = Command.run(root, { name: "mcp-oauth-store", version: version() })

const isValidationError = (error: unknown): boolean =>
  typeof error === "object" && error !== null && "_tag" in error &&
  ["CommandMismatch", "CorrectedFlag", "HelpRequested", "MissingValue", "MissingFlag", "MultipleValuesDetected", "MissingSubcommand", "InvalidArgument", "InvalidValue", "UnclusteredFlag", "NoBuiltInMatch"].includes(String(error._tag))

/** The exit code of a run; failures printed as one line (usage errors were printed by @effect/cli already). */
const program = Effect.suspend(() => cli(process.argv)).pipe(
  Effect.as<number>(ExitCode.Ok),
  Effect.catchAllCause((cause) => {
    if (Cause.isInterruptedOnly(cause)) return Effect.succeed(ExitCode.Interrupted)
    const failure = Option.getOrElse(Cause.failureOption(cause), () => Cause.squash(cause))
    if (isValidationError(failure)) return Effect.succeed(ExitCode.Usage)
    const { exitCode, line } = describeFailure(failure)
    return Effect.flatMap(CliOutput, (output) => output.err(`error: ${line}\n`)).pipe(Effect.as(exitCode))
  }),
  Effect.provide(Layer.mergeAll(NodeContext.layer, layerProcess, Logger.replace(Logger.defaultLogger, stderrLogger)))
)

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  disablePrettyLogger: true,
  teardown: (exit, onExit) =>
    onExit(
      Exit.isSuccess(exit) && typeof exit.value === "number"
        ? exit.value
        : Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)
        ? ExitCode.Interrupted
        : ExitCode.Failure
    )
})
