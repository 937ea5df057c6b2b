import { Effect, Either, ParseResult, Schema } from "effect"
import { StoreError } from "../../services/StoreError.ts"

/**
 * A record kept as JSON text in a column: encoded through its Schema on the
 * way in (`Invalid` if it does not encode), decoded and checked on the way out
 * (`Corrupt` if the stored text is not a valid record). For records without
 * secrets; secret-bearing values go through `internal/sealed.ts`.
 */
export interface JsonColumn<A> {
  readonly encode: (value: A, method: string) => Effect.Effect<string, StoreError>
  readonly decode: (text: string, method: string) => Effect.Effect<A, StoreError>
}

export const jsonColumn = <A, I>(schema: Schema.Schema<A, I>): JsonColumn<A> => {
  const json = Schema.parseJson(schema)
  const encode = ParseResult.encodeEither(json)
  const decode = ParseResult.decodeUnknownEither(json)
  return {
    encode: (value, method) =>
      Either.match(encode(value), {
        onLeft: (error) =>
          Effect.fail(new StoreError({ reason: "Invalid", method, description: "value does not encode", cause: error })),
        onRight: Effect.succeed
      }),
    decode: (text, method) =>
      Either.match(decode(text), {
        onLeft: (error) =>
          Effect.fail(new StoreError({ reason: "Corrupt", method, description: "stored row does not decode", cause: error })),
        onRight: Effect.succeed
      })
  }
}

/** Decode a value built from columns (not JSON text) against its Schema: `Corrupt` when a column holds something else. */
export const decodeRow = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = ParseResult.decodeUnknownEither(schema)
  return (value: unknown, method: string): Effect.Effect<A, StoreError> =>
    Either.match(decode(value), {
      onLeft: (error) =>
        Effect.fail(new StoreError({ reason: "Corrupt", method, description: "stored row does not decode", cause: error })),
      onRight: Effect.succeed
    })
}
