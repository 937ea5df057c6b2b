import { Context, type Effect, type Option } from "effect"
import type { SigningKeySet } from "../schema/signingKey.ts"
import type { StoreError } from "./StoreError.ts"

/**
 * Where the `Jwks` service keeps its signing keys, so every instance and every
 * restart signs and verifies with the same set. The whole set is one sealed
 * value (private keys are never stored in the clear), replaced by
 * compare-and-set on its version.
 */
export class SigningKeyStore extends Context.Tag("mcp-oauth-store/SigningKeyStore")<
  SigningKeyStore,
  SigningKeyStore.Service
>() {}

export declare namespace SigningKeyStore {
  export interface Service {
    readonly get: Effect.Effect<Option.Option<SigningKeySet>, StoreError>
    /**
     * Write `next` only if the stored set's version is still `expectedVersion`
     * (`undefined`: only if nothing is stored yet); `next.version` must be one
     * more. `true` when written, `false` when another writer got there first.
     */
    readonly compareAndSet: (expectedVersion: number | undefined, next: SigningKeySet) => Effect.Effect<boolean, StoreError>
  }
}
