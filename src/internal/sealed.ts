import { Effect, Schema } from "effect"
import type { Crypto } from "../services/Crypto.ts"
import { StoreError } from "../services/StoreError.ts"

/**
 * The one codec for secret-bearing values: Schema -> JSON -> `Crypto`
 * envelope bound to the record key, and back. Every backend stores what this
 * produces, so the at-rest format is the same everywhere.
 */
export const seal = <A, I>(
  crypto: Crypto.Service,
  schema: Schema.Schema<A, I>,
  value: A,
  recordKey: string,
  method: string
): Effect.Effect<string, StoreError> =>
  Schema.encode(Schema.parseJson(schema))(value).pipe(
    Effect.mapError((error) => new StoreError({ reason: "Invalid", method, description: "value does not encode", cause: error })),
    Effect.flatMap((json) => crypto.encrypt(json, recordKey))
  )

/** Open an envelope written by `seal`: `DecryptFailed` or `Corrupt` when it cannot be read back. */
export const open = <A, I>(
  crypto: Crypto.Service,
  schema: Schema.Schema<A, I>,
  envelope: string,
  recordKey: string,
  method: string
): Effect.Effect<A, StoreError> =>
  crypto.decrypt(envelope, recordKey).pipe(
    Effect.mapError((error) => new StoreError({ ...error, method })),
    Effect.flatMap((json) =>
      Schema.decode(Schema.parseJson(schema))(json).pipe(
        Effect.mapError((error) =>
          new StoreError({ reason: "Corrupt", method, description: "stored value does not decode", cause: error })
        )
      )
    )
  )
