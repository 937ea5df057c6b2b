import { Duration, Effect } from "effect"
import { chmodSync, closeSync, constants, existsSync, mkdirSync, openSync } from "node:fs"
import { dirname, resolve } from "node:path"
import { StoreError } from "../../services/StoreError.ts"
import type { Db } from "./db.ts"

const METHOD = "SqliteStore.layer"

/** Default `PRAGMA busy_timeout`: how long a statement waits for another process's write lock. */
export const DEFAULT_BUSY_TIMEOUT: Duration.DurationInput = "5 seconds"

/** `:memory:`, the empty name (a temporary database) and `file:` URIs are left to SQLite. */
export const isPlainFile = (filename: string): boolean =>
  filename !== "" && filename !== ":memory:" && !filename.startsWith("file:")

const isErrnoException = (error: unknown): error is NodeJS.ErrnoException =>
  error instanceof Error && "code" in error

/**
 * Make sure the database file exists before SQLite opens it: its folder is
 * created if missing (0700), the file itself with mode 0600, so no other user
 * can ever read it. An existing file is left as it is.
 */
export const prepareFile = (filename: string): Effect.Effect<void, StoreError> =>
  Effect.try({
    try: () => {
      if (!isPlainFile(filename)) return
      mkdirSync(dirname(resolve(filename)), { recursive: true, mode: 0o700 })
      try {
        closeSync(openSync(filename, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600))
        chmodSync(filename, 0o600) // in case the umask took bits away from the owner
      } catch (error) {
        if (!isErrnoException(error) || error.code !== "EEXIST") throw error
      }
    },
    catch: (cause) =>
      new StoreError({ reason: "Unavailable", method: METHOD, description: "cannot create the database file or its folder", cause })
  })

/** SQLite creates `-wal` and `-shm` with the database's mode; tighten any left from before with looser modes. */
export const restrictSidecars = (filename: string): Effect.Effect<void> =>
  Effect.sync(() => {
    if (!isPlainFile(filename)) return
    for (const suffix of ["-wal", "-shm"]) {
      const path = `${filename}${suffix}`
      try {
        if (existsSync(path)) chmodSync(path, 0o600)
      } catch {
        // Not ours to change (another owner): SQLite still works, and the database file itself is 0600.
      }
    }
  })

/**
 * Per-connection settings: the busy timeout, and (for a file) a check that WAL
 * is really on: readers never block the writer, and the atomic steps rely on
 * `BEGIN IMMEDIATE` under WAL.
 */
export const configure = (
  db: Db,
  busyTimeout: Duration.DurationInput,
  checkWal: boolean
): Effect.Effect<void, StoreError> =>
  Effect.gen(function*() {
    const millis = Math.max(0, Math.floor(Duration.toMillis(Duration.decode(busyTimeout))))
    yield* db.all(METHOD, `PRAGMA busy_timeout = ${millis}`, [])
    if (!checkWal) return
    const mode = yield* db.all<{ readonly journal_mode: string }>(METHOD, "PRAGMA journal_mode", [])
    if (mode[0]?.journal_mode.toLowerCase() !== "wal") {
      return yield* Effect.fail(
        new StoreError({
          reason: "Unavailable",
          method: METHOD,
          description: `WAL mode could not be enabled (journal_mode is ${mode[0]?.journal_mode ?? "unknown"})`
        })
      )
    }
  })
