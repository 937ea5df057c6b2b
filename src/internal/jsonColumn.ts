import { Effect, Either, ParseResult, Schema } from "effect"
import { compileGuard } from "./guard.ts"
import { StoreError } from "../services/StoreError.ts"

/**
 * A record kept as JSON text in a column: encoded through its Schema on the
 * way in (`Invalid` if it does not encode), decoded and checked on the way out
 * (`Corrupt` if the stored text is not a valid record). For records without
 * secrets; secret-bearing values go through `internal/sealed.ts`.
 */
export interface JsonColumn<A> {
  readonly encode: (value: A, method: string) => Effect.Effect<string, StoreError>
  /** `encode` without an Effect around it, for a step that runs synchronously: the JSON, or the `Invalid` error. */
  readonly encodeSync: (value: A, method: string) => string | StoreError
  readonly decode: (text: string, method: string) => Effect.Effect<A, StoreError>
  /** `decode` without an Effect around it, for a step that runs synchronously: the record, or the `Corrupt` error. */
  readonly decodeSync: (text: string, method: string) => A | StoreError
}

export const jsonColumn = <A, I>(schema: Schema.Schema<A, I>): JsonColumn<A> => {
  const json = Schema.parseJson(schema)
  const encode = ParseResult.encodeEither(json)
  const decode = ParseResult.decodeUnknownEither(json)
  // Where decoding is the identity, a compiled guard spares the decoder on well-formed values (see `internal/guard.ts`).
  const guard = compileGuard(schema)
  const parsed = (text: string): unknown => {
    try {
      return JSON.parse(text)
    } catch {
      return undefined
    }
  }
  const decodeSync = (text: string, method: string): A | StoreError => {
    if (guard !== undefined) {
      const value = parsed(text)
      if (guard(value)) return value
    }
    const decoded = decode(text)
    return Either.isRight(decoded)
      ? decoded.right
      : new StoreError({ reason: "Corrupt", method, description: "stored row does not decode", cause: decoded.left })
  }
  const encodeSync = (value: A, method: string): string | StoreError => {
    if (guard !== undefined && guard(value)) return JSON.stringify(value)
    const encoded = encode(value)
    return Either.isRight(encoded)
      ? encoded.right
      : new StoreError({ reason: "Invalid", method, description: "value does not encode", cause: encoded.left })
  }
  return {
    encode: (value, method) => {
      const encoded = encodeSync(value, method)
      return encoded instanceof StoreError ? Effect.fail(encoded) : Effect.succeed(encoded)
    },
    encodeSync,
    decode: (text, method) => {
      const value = decodeSync(text, method)
      return value instanceof StoreError ? Effect.fail(value) : Effect.succeed(value)
    },
    decodeSync
  }
}

/**
 * Decode a value built from columns (not JSON text) against its Schema, synchronously (for a step that runs
 * whole): the value, or `Corrupt` when a column holds something else.
 */
export const decodeRowSync = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = ParseResult.decodeUnknownEither(schema)
  const guard = compileGuard(schema)
  return (value: unknown, method: string): A | StoreError => {
    if (guard !== undefined && guard(value)) return value
    const decoded = decode(value)
    return Either.isRight(decoded)
      ? decoded.right
      : new StoreError({ reason: "Corrupt", method, description: "stored row does not decode", cause: decoded.left })
  }
}
