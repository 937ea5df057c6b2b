/**
 * The store file's format: a one-line JSON header naming the format and its
 * version, around one `Crypto` envelope that seals the whole snapshot of the
 * stores (the shared `seal`/`open` codec, bound to `Keys.fileSnapshot`).
 *
 *   {"format":"mcp-oauth-store/file","version":1,"snapshot":"<envelope>"}
 *
 * Only the format name and version are readable without the key. A later
 * format gets a new version number and a reader here that migrates it.
 */
import { Effect, Schema } from "effect"
import { Keys } from "../../internal/keys.ts"
import { open, seal } from "../../internal/sealed.ts"
import type { Crypto } from "../../services/Crypto.ts"
import { StoreError } from "../../services/StoreError.ts"
import { MemorySnapshot, type MemorySnapshotJson } from "../memory/state.ts"

/** The `format` member of every store file. */
export const FORMAT = "mcp-oauth-store/file"

/** The version this build writes. */
export const FORMAT_VERSION = 1

const LOAD = "FileStore.load"

const corrupt = (path: string, description: string, cause?: unknown) =>
  new StoreError({
    reason: "Corrupt",
    method: LOAD,
    description: `${path}: ${description}; the file was left as it is`,
    ...(cause === undefined ? {} : { cause })
  })

/**
 * Seal a snapshot and wrap it in the current header: the text of the file.
 * The snapshot is already in its encoded (JSON) form, straight from the
 * stores, so writing it is `JSON.stringify` without a second walk through
 * `MemorySnapshot` (at 20,000 records that walk costs several times the
 * stringify); reading it back decodes and checks it with `MemorySnapshot`.
 */
export const encodeFile = (crypto: Crypto.Service, snapshot: MemorySnapshotJson): Effect.Effect<string, StoreError> =>
  Effect.map(
    seal(crypto, Schema.Unknown, snapshot, Keys.fileSnapshot(FORMAT_VERSION), "FileStore.flush"),
    (envelope) =>
      // An envelope is base64url and dots: nothing to escape, so no second JSON pass over it.
      ENVELOPE_CHARACTERS.test(envelope)
        ? `${HEADER_START}${envelope}"}\n`
        : `${JSON.stringify({ format: FORMAT, version: FORMAT_VERSION, snapshot: envelope })}\n`
  )

const HEADER_START = `{"format":${JSON.stringify(FORMAT)},"version":${FORMAT_VERSION},"snapshot":"`
const ENVELOPE_CHARACTERS = /^[A-Za-z0-9._-]*$/

/** Per format version: open its sealed content as the current snapshot shape. */
const readers: Record<number, (crypto: Crypto.Service, envelope: string) => Effect.Effect<MemorySnapshot, StoreError>> = {
  1: (crypto, envelope) => open(crypto, MemorySnapshot, envelope, Keys.fileSnapshot(1), LOAD)
}

const utf8 = new TextDecoder("utf-8", { fatal: true })

const parseHeader = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/**
 * Read a store file's bytes back as a snapshot, all or nothing. A file that is
 * empty, truncated, not a store file, of an unknown version or whose content
 * does not decode is `Corrupt`; one sealed with a key the keyring does not
 * hold (or tampered with) is `DecryptFailed`. Descriptions name the path,
 * never the content.
 */
export const decodeFile = (
  crypto: Crypto.Service,
  path: string,
  bytes: Uint8Array
): Effect.Effect<MemorySnapshot, StoreError> =>
  Effect.suspend(() => {
    if (bytes.length === 0) return Effect.fail(corrupt(path, "the store file is empty (truncated)"))
    let text: string
    try {
      text = utf8.decode(bytes)
    } catch (cause) {
      return Effect.fail(corrupt(path, "the store file is not UTF-8 text (not a store file, or damaged)", cause))
    }
    const header = parseHeader(text)
    if (typeof header !== "object" || header === null || Array.isArray(header)) {
      return Effect.fail(corrupt(path, "the store file's header does not parse (truncated, or not a store file)"))
    }
    const { format, snapshot, version } = header as Record<string, unknown>
    if (format !== FORMAT) return Effect.fail(corrupt(path, `not a store file (format is not "${FORMAT}")`))
    if (typeof version !== "number" || !Number.isSafeInteger(version)) {
      return Effect.fail(corrupt(path, "the store file's format version is missing or not an integer"))
    }
    const reader = readers[version]
    if (reader === undefined) {
      return Effect.fail(corrupt(
        path,
        `format version ${version} is not supported: this build reads version ${FORMAT_VERSION}` +
          (version > FORMAT_VERSION ? " (written by a newer build?)" : "")
      ))
    }
    if (typeof snapshot !== "string") return Effect.fail(corrupt(path, "the store file holds no sealed snapshot"))
    return reader(crypto, snapshot).pipe(
      Effect.mapError((error) =>
        new StoreError({
          reason: error.reason,
          method: LOAD,
          description: error.reason === "DecryptFailed"
            ? `${path}: the snapshot does not open with the configured keys (another RS_TOKENS_ENC_KEY, or tampered with: ${error.description ?? "no detail"}); the file was left as it is`
            : `${path}: ${error.description ?? "the snapshot does not decode"}; the file was left as it is`,
          cause: error
        })
      )
    )
  })
