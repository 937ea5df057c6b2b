import { Context, type Effect, type Option, type Stream } from "effect"
import type { RecordCounts, Reseal, StoredRecord } from "../schema/storedRecord.ts"
import type { StoreError } from "./StoreError.ts"

/**
 * A sealed value a backend keeps around its records rather than in one (the
 * file backend's whole snapshot): what re-keying must seal again besides the
 * records.
 */
export interface SealedContainer {
  /** What it is, for display (`/data/tokens.enc`). */
  readonly name: string
  /** The id of the key that sealed it as it is stored now. */
  readonly keyId: string | undefined
}

/**
 * The records of a backend as it stores them, for the operator's tools
 * (re-keying, migration between backends, inspection): list every live
 * record, replace sealed values by compare-and-set on the ciphertext, and
 * write records back exactly as stored. Bearer secrets never appear (only
 * their lookup hashes), secret values only sealed; nothing here decrypts.
 *
 * Every method is safe while servers use the same backend: a re-seal writes
 * only over the envelope it read (a value a server rewrote meanwhile is left
 * as the server wrote it), in one atomic step per batch (a SQLite
 * transaction, one Redis script, one synchronous step in memory).
 *
 * Provided by the memory, SQLite, file and Redis backends.
 */
export class StoreMaintenance extends Context.Tag("mcp-oauth-store/StoreMaintenance")<
  StoreMaintenance,
  StoreMaintenance.Service
>() {}

export declare namespace StoreMaintenance {
  export interface Service {
    /** The backend and where its data is, for display (`sqlite ./data/store.db`); never a credential. */
    readonly description: string
    /**
     * Every live record, as stored, a page at a time. A record written or
     * removed while the stream runs may or may not be listed; none is listed
     * twice.
     */
    readonly records: (options?: { readonly pageSize?: number }) => Stream.Stream<StoredRecord, StoreError>
    /** How many live records of each kind the backend holds (cheaper than reading them). */
    readonly counts: Effect.Effect<RecordCounts, StoreError>
    /**
     * Replace sealed values, each only if it still holds the envelope it is
     * expected to hold; per item, whether it was replaced. A batch is one
     * atomic step of the backend.
     */
    readonly reseal: (batch: ReadonlyArray<Reseal>) => Effect.Effect<ReadonlyArray<boolean>, StoreError>
    /**
     * Write records exactly as given (lookup hashes, envelopes, expiries,
     * consumed codes, rotated refresh tokens), replacing any record under the
     * same key, with the indexes the backend keeps. Records already expired
     * are skipped.
     */
    readonly importRecords: (records: ReadonlyArray<StoredRecord>) => Effect.Effect<void, StoreError>
    /** Sealed values kept around the records (the file's snapshot); empty for the other backends. */
    readonly containers: Effect.Effect<ReadonlyArray<SealedContainer>, StoreError>
    /** Seal every container again under the active key (write the file's snapshot now). */
    readonly resealContainers: Effect.Effect<void, StoreError>
    /** The storage the backend uses, in bytes, when it can tell. */
    readonly size: Effect.Effect<Option.Option<number>, StoreError>
  }
}
