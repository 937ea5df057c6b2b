/**
 * Startup failures as the one line the server prints before it exits:
 * which variable, file or backend is wrong, never a secret.
 */
import { ConfigError } from "effect"
import { logDetail } from "../errors/render.ts"
import { StoreError } from "../services/StoreError.ts"
import { describeConfigError } from "./config.ts"

const hasTag = (u: unknown, tag: string): boolean =>
  typeof u === "object" && u !== null && "_tag" in u && u._tag === tag

const errnoOf = (u: unknown): string | undefined =>
  typeof u === "object" && u !== null && "code" in u && typeof u.code === "string" ? u.code : undefined

/** One line describing why the server could not start (or stopped with an error). */
export const describeStartupFailure = (error: unknown, address: { readonly host: string; readonly port: number }): string => {
  if (ConfigError.isConfigError(error)) return describeConfigError(error)
  if (error instanceof StoreError) return `the store could not be opened: ${logDetail(error)}`
  if (hasTag(error, "KeyFileError") || hasTag(error, "InvalidOAuthOptions") || hasTag(error, "TelemetryUnavailable")) return `invalid configuration: ${(error as Error).message}`
  if (hasTag(error, "ServeError")) {
    const cause = typeof error === "object" && error !== null && "cause" in error ? error.cause : undefined
    return `cannot listen on ${address.host}:${address.port} (${errnoOf(cause) ?? "error"})`
  }
  return `unexpected failure: ${logDetail(error)}`
}
