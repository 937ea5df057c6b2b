/**
 * The command-line tool's failures, each with the one line it prints and its
 * exit code: 2 for input the tool cannot use (arguments, store names,
 * settings), 1 for everything that went wrong while doing the work. No
 * message ever contains a key, a token or a credential of a store URL.
 */
import { ConfigError, Data } from "effect"
import { StoreError } from "../services/StoreError.ts"
import { describeConfigError } from "../server/config.ts"

/** Exit codes: success, a failure of the work, input the tool cannot use, interrupted (SIGINT, SIGTERM). */
export const ExitCode = { Ok: 0, Failure: 1, Usage: 2, Interrupted: 130 } as const

/** An argument, store name or file the tool cannot use. */
export class InvalidInput extends Data.TaggedError("InvalidInput")<{ readonly description: string }> {
  override get message(): string {
    return this.description
  }
}

/** Sealed values that no key of the keyring opens. */
export class KeyMismatch extends Data.TaggedError("KeyMismatch")<{
  /** The key ids the unopened envelopes name (ids, never keys). */
  readonly keyIds: ReadonlyArray<string>
  readonly count: number
  /** The first values all failed, so the rest were not tried. */
  readonly stoppedEarly: boolean
}> {
  override get message(): string {
    const ids = this.keyIds.length === 0 ? "" : ` (sealed by key id ${this.keyIds.join(", ")})`
    const count = this.stoppedEarly ? `the first ${this.count.toLocaleString("en-US")}` : this.count.toLocaleString("en-US")
    return `no configured key opens these records: ${count} sealed value(s)${ids} do not open with ` +
      "RS_TOKENS_ENC_KEY or RS_TOKENS_ENC_KEYRING; add the key that sealed them to RS_TOKENS_ENC_KEYRING"
  }
}

/** A migration target that already holds records, without `--force`. */
export class TargetNotEmpty extends Data.TaggedError("TargetNotEmpty")<{ readonly target: string; readonly records: number }> {
  override get message(): string {
    return `the target (${this.target}) already holds ${this.records.toLocaleString("en-US")} record(s): ` +
      "refusing to write into it without --force (records under the same key would be replaced)"
  }
}

/** What a migration's check after the copy found wrong. */
export class VerificationFailed extends Data.TaggedError("VerificationFailed")<{ readonly problems: ReadonlyArray<string> }> {
  override get message(): string {
    return `verification failed: ${this.problems.join("; ")}`
  }
}

/** A store that cannot be reached (Redis down, wrong host or port). */
export class StoreUnreachable extends Data.TaggedError("StoreUnreachable")<{ readonly store: string; readonly description: string }> {
  override get message(): string {
    return `cannot reach ${this.store}: ${this.description}`
  }
}

/** Every failure the tool reports. */
export type CliError = InvalidInput | KeyMismatch | TargetNotEmpty | VerificationFailed | StoreUnreachable

const hasTag = (u: unknown, tag: string): u is { readonly _tag: string; readonly message: string } =>
  typeof u === "object" && u !== null && "_tag" in u && u._tag === tag

/** A store failure as an operator reads it. */
const describeStoreError = (error: StoreError): string => {
  if (error.reason === "DecryptFailed") {
    return `no configured key opens these records (${error.description ?? error.method}): ` +
      "set RS_TOKENS_ENC_KEY (and RS_TOKENS_ENC_KEYRING) to the keys the store was sealed with"
  }
  if (error.method === "RedisStore.connect") return `cannot reach Redis (${error.description ?? "no answer"})`
  if (error.reason === "Unavailable") return `the store is unavailable: ${error.message}`
  if (error.reason === "Conflict") return `the store is in use: ${error.description ?? error.message}`
  return `store error: ${error.message}`
}

/** The line to print and the exit code for a failure. */
export const describeFailure = (error: unknown): { readonly line: string; readonly exitCode: number } => {
  if (error instanceof InvalidInput) return { line: error.message, exitCode: ExitCode.Usage }
  if (ConfigError.isConfigError(error)) return { line: describeConfigError(error), exitCode: ExitCode.Usage }
  if (
    error instanceof KeyMismatch || error instanceof TargetNotEmpty || error instanceof VerificationFailed ||
    error instanceof StoreUnreachable
  ) {
    return { line: error.message, exitCode: ExitCode.Failure }
  }
  if (error instanceof StoreError) return { line: describeStoreError(error), exitCode: ExitCode.Failure }
  if (hasTag(error, "KeyFileError")) return { line: `invalid configuration: ${error.message}`, exitCode: ExitCode.Usage }
  return { line: `unexpected failure: ${error instanceof Error ? error.message : String(error)}`, exitCode: ExitCode.Failure }
}
