/**
 * Reading request bodies: the content type checked, the size bounded (the
 * server's `MaxBodySize`), form parameters that appear twice refused
 * (RFC 6749 §3.1), JSON that does not parse reported as such.
 */
import { HttpServerRequest } from "@effect/platform"
import { Data, Effect, Option } from "effect"
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

/** The raw body as text, refused before reading when its declared length is over the limit. */
export const readText = (
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<string, BodyTooLarge | UnreadableBody> =>
  Effect.flatMap(HttpServerRequest.MaxBodySize, (max) => {
    const limit = Option.getOrElse(Option.map(max, Number), () => Number.POSITIVE_INFINITY)
    const declared = Number(request.headers["content-length"] ?? "0")
    if (Number.isFinite(declared) && declared > limit) return Effect.fail(new BodyTooLarge({ limit }))
    return Effect.mapError(request.text, () =>
      Number.isFinite(limit) ? new BodyTooLarge({ limit }) : new UnreadableBody())
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
