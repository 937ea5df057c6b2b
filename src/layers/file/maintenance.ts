/**
 * `StoreMaintenance` for the file backend: the memory stores' maintenance,
 * each change persisted by the flush policy (a re-seal batch returns once the
 * file holding it is on disk under "every-write"), and the file's own sealed
 * snapshot as the one container: every write seals it under the active key.
 */
import { Effect, Option } from "effect"
import * as fs from "node:fs/promises"
import { keyIdOf } from "../crypto/envelope.ts"
import type { Crypto } from "../../services/Crypto.ts"
import type { SealedContainer, StoreMaintenance } from "../../services/StoreMaintenance.ts"
import type { StoreError } from "../../services/StoreError.ts"
import { makeMemoryMaintenance } from "../memory/maintenance.ts"
import type { MemoryState } from "../memory/state.ts"
import { diskError, isNotFound, readWhole } from "./disk.ts"
import type { Flusher } from "./flusher.ts"

/** The key id of the snapshot sealed in a store file's header; `undefined` when it names none. */
const snapshotKeyId = (bytes: Uint8Array): string | undefined => {
  try {
    const header: unknown = JSON.parse(new TextDecoder().decode(bytes))
    if (typeof header !== "object" || header === null || !("snapshot" in header)) return undefined
    return typeof header.snapshot === "string" ? keyIdOf(header.snapshot) : undefined
  } catch {
    return undefined
  }
}

/** `StoreMaintenance` over the file backend's state, persisted through its flusher. */
export const makeFileMaintenance = (
  state: MemoryState,
  flusher: Pick<Flusher, "persisted">,
  path: string
): Effect.Effect<StoreMaintenance.Service, never, Crypto> => {
  const containers: Effect.Effect<ReadonlyArray<SealedContainer>, StoreError> = Effect.map(
    readWhole(path),
    Option.match({ onNone: () => [], onSome: (bytes) => [{ name: path, keyId: snapshotKeyId(bytes) }] })
  )
  const size = Effect.tryPromise({
    try: () => fs.stat(path).then((stat) => Option.some(stat.size), (cause) => isNotFound(cause) ? Option.none() : Promise.reject(cause)),
    catch: (cause) => diskError("StoreMaintenance.size", `cannot read ${path}`, cause)
  })
  return makeMemoryMaintenance(state, { description: `file ${path}`, persisted: flusher.persisted, containers, size })
}
