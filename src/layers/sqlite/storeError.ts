/** How a SQLite failure reads as a `StoreError`: the result code decides the reason. */
import { StoreError, type StoreErrorReason } from "../../services/StoreError.ts"

const sqliteCode = (cause: unknown): string | undefined => {
  if (typeof cause !== "object" || cause === null || !("code" in cause)) return undefined
  return typeof cause.code === "string" && cause.code.startsWith("SQLITE_") ? cause.code : undefined
}

/** The SQLite result code behind a failure, looking through `SqlError` and its causes. */
const sqliteCodeOf = (error: unknown): string | undefined => {
  let current: unknown = error
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    const code = sqliteCode(current)
    if (code !== undefined) return code
    current = "cause" in current ? current.cause : undefined
  }
  return undefined
}

/**
 * Which `StoreError` reason a SQLite result code means: a busy or locked
 * database after the busy timeout, a full disk or an I/O error are
 * `Unavailable` (retryable); a damaged or foreign file is `Corrupt`; a
 * constraint violation is `Conflict`.
 */
const reasonOf = (code: string | undefined): StoreErrorReason => {
  if (code === undefined) return "Unavailable"
  if (code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB") return "Corrupt"
  if (code.startsWith("SQLITE_CONSTRAINT")) return "Conflict"
  return "Unavailable"
}

/** A failure of the database as a `StoreError`: the SQLite code is the description (never a value or a parameter). */
export const toStoreError = (method: string, error: unknown): StoreError => {
  const code = sqliteCodeOf(error)
  return new StoreError({
    reason: reasonOf(code),
    method,
    description: code ?? "database error",
    cause: error
  })
}
