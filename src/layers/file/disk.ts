/**
 * The file backend's disk operations: read the store file whole, and replace
 * it atomically and durably. Every failure is a `StoreError` (`Unavailable`)
 * naming the operation, the path and the system error code.
 */
import { Effect, Option } from "effect"
import * as fs from "node:fs/promises"
import { dirname } from "node:path"
import { StoreError } from "../../services/StoreError.ts"

/** Files and the lock are readable and writable by their owner only. */
export const FILE_MODE = 0o600
/** A folder the backend creates is its owner's only. */
export const DIRECTORY_MODE = 0o700

/** Where a new snapshot is written before it is renamed over the store file. */
export const tempPathOf = (path: string): string => `${path}.tmp`

const errorCode = (cause: unknown): string =>
  typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string" ? cause.code : "unknown error"

/** The `Unavailable` error of a failed disk operation. */
export const diskError = (method: string, what: string, cause: unknown): StoreError =>
  new StoreError({ reason: "Unavailable", method, description: `${what}: ${errorCode(cause)}`, cause })

export const isNotFound = (cause: unknown): boolean => errorCode(cause) === "ENOENT"

/** Create the store file's folder (and its parents) when missing. */
export const ensureDirectory = (path: string): Effect.Effect<void, StoreError> =>
  Effect.tryPromise({
    try: () => fs.mkdir(dirname(path), { recursive: true, mode: DIRECTORY_MODE }),
    catch: (cause) => diskError("FileStore.open", `cannot create the folder of ${path}`, cause)
  })

/** The whole file, or `None` when it does not exist. */
export const readWhole = (path: string): Effect.Effect<Option.Option<Uint8Array>, StoreError> =>
  Effect.tryPromise({
    try: () => fs.readFile(path).then(Option.some, (cause) => isNotFound(cause) ? Option.none() : Promise.reject(cause)),
    catch: (cause) => diskError("FileStore.load", `cannot read ${path}`, cause)
  })

/** Remove a file if it exists. */
export const removeIfExists = (path: string, method: string): Effect.Effect<void, StoreError> =>
  Effect.tryPromise({
    try: () => fs.rm(path, { force: true }),
    catch: (cause) => diskError(method, `cannot remove ${path}`, cause)
  })

const fsyncDirectory = async (directory: string): Promise<void> => {
  const handle = await fs.open(directory, "r")
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * Replace `path` with `data` so that a crash at any instant leaves either the
 * old file or the new one, never a mix: write a temporary file in the same
 * folder (created with mode 0600), fsync it, rename it over `path`, fsync the
 * folder so the rename itself is durable. One writer at a time (the caller
 * serializes); a temporary file left by a crash is replaced.
 */
export const replaceDurably = async (path: string, data: string): Promise<void> => {
  const temp = tempPathOf(path)
  await fs.rm(temp, { force: true })
  const handle = await fs.open(temp, "wx", FILE_MODE)
  try {
    try {
      await handle.writeFile(data, "utf8")
      await handle.sync()
    } finally {
      await handle.close()
    }
    await fs.rename(temp, path)
  } catch (cause) {
    await fs.rm(temp, { force: true }).catch(() => undefined)
    throw cause
  }
  await fsyncDirectory(dirname(path))
}

/** `replaceDurably` as an effect that cannot be interrupted half-way. */
export const writeDurably = (path: string, data: string): Effect.Effect<void, StoreError> =>
  Effect.uninterruptible(Effect.tryPromise({
    try: () => replaceDurably(path, data),
    catch: (cause) => diskError("FileStore.flush", `cannot write ${path}`, cause)
  }))
