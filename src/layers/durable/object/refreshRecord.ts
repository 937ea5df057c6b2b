/**
 * Refresh-token records inside the object: rotation must read the presented
 * record and write its successor in the same synchronous step, so the object
 * decodes and encodes them itself (the same Schema the layer uses, so the
 * bodies are interchangeable). A body that does not decode aborts the step.
 */
import { Either, ParseResult, Schema } from "effect"
import { RefreshTokenRecord } from "../../../schema/token.ts"
import { Abort, corrupt } from "./db.ts"

const json = Schema.parseJson(RefreshTokenRecord)
const decode = ParseResult.decodeUnknownEither(json)
const encode = ParseResult.encodeEither(json)

/** A stored body as a record (with `rotatedAt` from its column); `Abort` with `Corrupt` when it does not decode. */
export const readRefresh = (body: string, rotatedAt: number | null): RefreshTokenRecord =>
  Either.match(decode(body), {
    onLeft: () => {
      throw new Abort(corrupt("refresh token"))
    },
    onRight: (record) => rotatedAt === null ? record : { ...record, rotatedAt }
  })

/** A record as the body to store; `Abort` with `Invalid` when it does not encode. */
export const writeRefresh = (record: RefreshTokenRecord): string =>
  Either.match(encode(record), {
    onLeft: () => {
      throw new Abort({ _tag: "Failure", reason: "Invalid", description: "refresh token does not encode" })
    },
    onRight: (body) => body
  })
