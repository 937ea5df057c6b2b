import { Context, type Effect } from "effect"
import type { StoreError } from "./StoreError.ts"

/**
 * Exactly what a backend holds, as the strings it stores (keys and values).
 * For audits and for the contract suite's proof that no bearer secret or
 * provider token is ever stored in the clear. Not for application logic.
 */
export class RawStorage extends Context.Tag("mcp-oauth-store/RawStorage")<RawStorage, RawStorage.Service>() {}

export declare namespace RawStorage {
  export interface Service {
    readonly dump: Effect.Effect<ReadonlyArray<string>, StoreError>
  }
}
