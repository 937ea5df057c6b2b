import { Schema } from "effect"

/** Milliseconds since the Unix epoch, as read from Effect's `Clock`. */
export const EpochMillis = Schema.Number.pipe(Schema.int(), Schema.nonNegative())

/** OAuth scope values, in the order they were granted. */
export const Scopes = Schema.Array(Schema.String)

/** A PKCE code challenge. Only S256 is accepted (OAuth 2.1). */
export const CodeChallengeMethod = Schema.Literal("S256")
