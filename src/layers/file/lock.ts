/**
 * One writer per store file: `<file>.lock`, created with O_EXCL and holding
 * the owner's pid and hostname, for as long as the layer's scope is open.
 *
 * A lock whose pid is dead on this host (the owner crashed) is taken over,
 * with a log line. Anything else (a live pid, another host, a lock that names
 * no holder) refuses to open, naming the holder.
 */
import { Effect, type Scope } from "effect"
import * as fs from "node:fs/promises"
import { hostname } from "node:os"
import { StoreError } from "../../services/StoreError.ts"
import { diskError, FILE_MODE, isNotFound } from "./disk.ts"

const METHOD = "FileStore.lock"

export const lockPathOf = (path: string): string => `${path}.lock`

interface Holder {
  readonly pid: number
  readonly hostname: string
}

const parseHolder = (text: string): Holder | undefined => {
  try {
    const value: unknown = JSON.parse(text)
    if (typeof value !== "object" || value === null) return undefined
    const { hostname: host, pid } = value as Record<string, unknown>
    return typeof pid === "number" && Number.isSafeInteger(pid) && pid > 0 && typeof host === "string"
      ? { pid, hostname: host }
      : undefined
  } catch {
    return undefined
  }
}

/** Whether a process with this pid exists on this host (EPERM: it exists, owned by someone else). */
const isAlive = (pid: number): boolean => {
  if (pid === process.pid) return true
  try {
    process.kill(pid, 0)
    return true
  } catch (cause) {
    return !(typeof cause === "object" && cause !== null && "code" in cause && cause.code === "ESRCH")
  }
}

const inUse = (path: string, lockPath: string, holder: Holder | undefined) =>
  new StoreError({
    reason: "Conflict",
    method: METHOD,
    description: holder === undefined
      ? `${path} is locked by ${lockPath}, which names no holder (being created right now, or left by a crash ` +
        `during its creation): remove it if no process uses the store`
      : `${path} is in use by pid ${holder.pid} on host ${holder.hostname} (lock file ${lockPath})` +
        (holder.hostname === hostname() ? "" : ": if that process is gone, remove the lock file")
  })

const readText = (file: string): Promise<string | undefined> =>
  fs.readFile(file, "utf8").catch((cause) => isNotFound(cause) ? undefined : Promise.reject(cause))

type Attempt =
  | { readonly _tag: "Acquired" }
  | { readonly _tag: "Held"; readonly holder: Holder | undefined }
  | { readonly _tag: "Stale"; readonly holder: Holder; readonly text: string }
  | { readonly _tag: "Vanished" }

const attempt = async (lockPath: string, mine: string): Promise<Attempt> => {
  try {
    await fs.writeFile(lockPath, mine, { flag: "wx", mode: FILE_MODE })
    return { _tag: "Acquired" }
  } catch (cause) {
    if (typeof cause !== "object" || cause === null || !("code" in cause) || cause.code !== "EEXIST") throw cause
  }
  const text = await readText(lockPath)
  if (text === undefined) return { _tag: "Vanished" }
  const holder = parseHolder(text)
  if (holder === undefined || holder.hostname !== hostname() || isAlive(holder.pid)) return { _tag: "Held", holder }
  return { _tag: "Stale", holder, text }
}

/**
 * Move a stale lock aside, then check that what moved is the stale lock read
 * before: if another process took it over in between, what moved is its fresh
 * lock, which goes back (a hard link, so nothing is overwritten) and this
 * process gives way.
 */
const clearStale = async (lockPath: string, stale: string): Promise<boolean> => {
  const aside = `${lockPath}.stale-${process.pid}`
  try {
    await fs.rename(lockPath, aside)
  } catch (cause) {
    if (isNotFound(cause)) return true
    throw cause
  }
  const moved = await readText(aside)
  if (moved !== stale && moved !== undefined) {
    await fs.link(aside, lockPath).catch(() => undefined)
    await fs.rm(aside, { force: true })
    return false
  }
  await fs.rm(aside, { force: true })
  return true
}

const acquire = (path: string, lockPath: string, mine: string): Effect.Effect<void, StoreError> =>
  Effect.gen(function*() {
    for (let tries = 0; tries < 3; tries++) {
      const result = yield* Effect.tryPromise({
        try: () => attempt(lockPath, mine),
        catch: (cause) => diskError(METHOD, `cannot create ${lockPath}`, cause)
      })
      switch (result._tag) {
        case "Acquired":
          return
        case "Held":
          return yield* Effect.fail(inUse(path, lockPath, result.holder))
        case "Vanished":
          continue
        case "Stale": {
          yield* Effect.logWarning(
            `taking over the lock of ${path}: its holder, pid ${result.holder.pid} on this host, is no longer running`
          ).pipe(Effect.annotateLogs({ module: "FileStore", lock: lockPath }))
          const cleared = yield* Effect.tryPromise({
            try: () => clearStale(lockPath, result.text),
            catch: (cause) => diskError(METHOD, `cannot remove the stale lock ${lockPath}`, cause)
          })
          if (!cleared) continue
        }
      }
    }
    const text = yield* Effect.promise(() => readText(lockPath).catch(() => undefined))
    return yield* Effect.fail(inUse(path, lockPath, text === undefined ? undefined : parseHolder(text)))
  })

/** Remove the lock if it is still this process's. */
const release = (lockPath: string, mine: string): Effect.Effect<void> =>
  Effect.promise(async () => {
    const text = await readText(lockPath).catch(() => undefined)
    if (text === mine) await fs.rm(lockPath, { force: true }).catch(() => undefined)
  })

/** Hold the lock of the store file at `path` for the current scope. */
export const holdLock = (path: string): Effect.Effect<void, StoreError, Scope.Scope> => {
  const lockPath = lockPathOf(path)
  const mine = `${JSON.stringify({ pid: process.pid, hostname: hostname() })}\n`
  return Effect.acquireRelease(acquire(path, lockPath, mine), () => release(lockPath, mine))
}
