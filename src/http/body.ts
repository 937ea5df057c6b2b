/**
 * Reading request bodies: the content type checked, the size bounded (the
 * server's `MaxBodySize`), form parameters that appear twice refused
 * (RFC 6749 §3.1), JSON that does not parse reported as such.
 */
import { HttpServerRequest } from "@effect/platform"
import { Data, Effect, Option, Predicate, Stream } from "effect"
import { InvalidRequest } from "../errors/OAuthError.ts"

/** The body is larger than the server accepts. */
export class BodyTooLarge extends Data.TaggedError("BodyTooLarge")<{ readonly limit: number }> {}

/** The body could not be read (the client went away, or sent too much). */
export class UnreadableBody extends Data.TaggedError("UnreadableBody")<{}> {}

/** What reading a request needs of it: its headers (lower-case names). */
export interface RequestHeaders {
  readonly headers: Readonly<Record<string, string | undefined>>
}

/** The media type of a request, lower-cased, without parameters. */
export const mediaType = (request: RequestHeaders): string =>
  (request.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() ?? ""

/**
 * How far past the limit a body without `Content-Length` is read (and thrown
 * away) so that its 413 reaches the client: stopping mid-body would close the
 * connection under it. A body longer still has its connection closed.
 */
export const DRAIN_BYTES = 8 * 1024 * 1024

const utf8 = new TextDecoder()

/** Whether the request is a web `Request` without a body (its stream cannot be opened, and there is nothing to read). */
const hasNoWebBody = (request: HttpServerRequest.HttpServerRequest): boolean =>
  Predicate.hasProperty(request.source, "body") && request.source.body === null

/**
 * A body of unknown length (chunked), up to `limit` bytes: read to its end
 * (past the limit, only counted, for at most `DRAIN_BYTES`), so that a body
 * over the limit is refused with an answer rather than a cut connection.
 */
const readBounded = (
  request: HttpServerRequest.HttpServerRequest,
  limit: number
): Effect.Effect<string, BodyTooLarge | UnreadableBody> => {
  if (hasNoWebBody(request)) return Effect.succeed("")
  const kept: Array<Uint8Array> = []
  return request.stream.pipe(
    Stream.runFoldWhile(0, (bytes) => bytes <= limit + DRAIN_BYTES, (bytes, chunk: Uint8Array) => {
      if (bytes + chunk.length <= limit) kept.push(chunk)
      return bytes + chunk.length
    }),
    Effect.mapError(() => new UnreadableBody()),
    Effect.flatMap((bytes) => {
      if (bytes > limit) return Effect.fail(new BodyTooLarge({ limit }))
      const body = new Uint8Array(bytes)
      let at = 0
      for (const chunk of kept) {
        body.set(chunk, at)
        at += chunk.length
      }
      return Effect.succeed(utf8.decode(body))
    })
  )
}

/**
 * The raw body as text, within the server's `MaxBodySize`: refused before
 * reading when its declared length is over it; without a declared length
 * (chunked), read as far as the limit and refused past it, with an answer.
 */
export const readText = (
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<string, BodyTooLarge | UnreadableBody> =>
  Effect.flatMap(HttpServerRequest.MaxBodySize, (max) => {
    const limit = Option.getOrElse(Option.map(max, Number), () => Number.POSITIVE_INFINITY)
    const length = request.headers["content-length"]
    if (length === undefined && Number.isFinite(limit)) return readBounded(request, limit)
    const declared = Number(length ?? "0")
    if (Number.isFinite(declared) && declared > limit) return Effect.fail(new BodyTooLarge({ limit }))
    // A declared length is the body's framing: the read ends there, within the limit.
    return Effect.mapError(request.text, () => new UnreadableBody())
  })

/** Form parameters, each present at most once. */
export type FormParams = Readonly<Record<string, string>>

/** Parse `application/x-www-form-urlencoded` text; a parameter sent twice is `invalid_request`. */
export const parseForm = (text: string): Effect.Effect<FormParams, InvalidRequest> => {
  const params: Record<string, string> = {}
  for (const [name, value] of new URLSearchParams(text)) {
    if (Object.hasOwn(params, name)) {
      return Effect.fail(new InvalidRequest({ description: `parameter ${name.slice(0, 40)} appears more than once` }))
    }
    params[name] = value
  }
  return Effect.succeed(params)
}

/**
 * A request whose body is read by whoever serves it (the platform's body
 * limit, or the Node fast path's): its headers, and its body as text.
 */
export interface TextRequest extends RequestHeaders {
  readonly text: Effect.Effect<string, BodyTooLarge | UnreadableBody>
}

/** The form body of `request`: `application/x-www-form-urlencoded` only (checked before the body is awaited). */
export const formOf = (request: TextRequest): Effect.Effect<FormParams, InvalidRequest | BodyTooLarge | UnreadableBody> =>
  mediaType(request) === "application/x-www-form-urlencoded"
    ? Effect.flatMap(request.text, parseForm)
    : Effect.fail(new InvalidRequest({ description: "the body must be application/x-www-form-urlencoded" }))

/** The form body of an OAuth endpoint: `application/x-www-form-urlencoded` only. */
export const readForm = (
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<FormParams, InvalidRequest | BodyTooLarge | UnreadableBody> =>
  mediaType(request) === "application/x-www-form-urlencoded"
    ? Effect.flatMap(readText(request), parseForm)
    : Effect.fail(new InvalidRequest({ description: "the body must be application/x-www-form-urlencoded" }))

/** The request's query parameters, each present at most once. */
export const queryParams = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<FormParams, InvalidRequest> => {
  const at = request.url.indexOf("?")
  return parseForm(at === -1 ? "" : request.url.slice(at + 1))
}

/** The body does not parse as JSON. */
export class MalformedJson extends Data.TaggedError("MalformedJson")<{}> {}

/** A JSON body: `application/json` only; `MalformedJson` when it does not parse. */
export const readJson = (
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<unknown, InvalidRequest | MalformedJson | BodyTooLarge | UnreadableBody> =>
  mediaType(request) === "application/json"
    ? Effect.flatMap(readText(request), (text) =>
      Effect.try({ try: () => JSON.parse(text) as unknown, catch: () => new MalformedJson() }))
    : Effect.fail(new InvalidRequest({ description: "the body must be application/json" }))
