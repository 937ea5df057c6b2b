import { Schema } from "effect"

/**
 * Why a backend operation failed:
 * - `Unavailable`: the backend could not be reached in time, or a bounded
 *   backend is full of records it must not drop (retryable);
 * - `Corrupt`: stored data could not be decoded;
 * - `DecryptFailed`: a ciphertext was tampered with, or no configured key opens it;
 * - `Conflict`: a concurrent writer won and the operation could not be applied;
 * - `Invalid`: the caller passed something the store cannot accept.
 */
export const StoreErrorReason = Schema.Literal("Unavailable", "Corrupt", "DecryptFailed", "Conflict", "Invalid")
export type StoreErrorReason = typeof StoreErrorReason.Type

/**
 * The one error family of every backend: which operation failed, why, and the
 * underlying cause. Messages never contain secrets.
 */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  reason: StoreErrorReason,
  method: Schema.String,
  description: Schema.optional(Schema.String),
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return `${this.method}: ${this.reason}${this.description === undefined ? "" : ` (${this.description})`}`
  }
}
