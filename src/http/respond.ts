/**
 * Building responses: JSON documents, OAuth errors (through the one renderer
 * of `src/errors`), HTML pages and redirects, each with the headers its kind
 * needs. Every handler of the server answers through these.
 */
import { HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { InvalidRequest, type OAuthError } from "../errors/OAuthError.ts"
import { logDetail, type RenderContext, renderOAuthError, toOAuthError } from "../errors/render.ts"
import { BodyTooLarge, MalformedJson, UnreadableBody } from "./body.ts"

/** `Cache-Control: no-store` (and its HTTP/1.0 twin): for every response that carries or reveals a secret. */
export const NO_STORE = { "cache-control": "no-store", pragma: "no-cache" } as const

/** A JSON response; `noStore` for anything with tokens or secrets in it. */
export const jsonResponse = (
  body: unknown,
  options: { readonly status?: number; readonly noStore?: boolean; readonly headers?: Record<string, string> } = {}
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(body, {
    status: options.status ?? 200,
    headers: { ...(options.noStore === true ? NO_STORE : {}), ...options.headers }
  })

/** A JSON 404 in the shape of every other error. */
export const notFoundResponse = (description = "no such endpoint"): HttpServerResponse.HttpServerResponse =>
  jsonResponse({ error: "not_found", error_description: description }, { status: 404 })

/** An OAuth error as its RFC 6749/6750 response. */
export const renderedError = (error: OAuthError, context?: RenderContext): HttpServerResponse.HttpServerResponse => {
  const rendered = renderOAuthError(error, context)
  return HttpServerResponse.unsafeJson(rendered.body, { status: rendered.status, headers: rendered.headers })
}

/**
 * Any failure as an OAuth error response: OAuth errors as they are, a store
 * outage as 503 `temporarily_unavailable`, anything else as an opaque 500
 * `server_error`. Server-side failures are logged (without secrets).
 */
export const errorResponse = (
  error: unknown,
  context?: RenderContext
): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
  if (error instanceof BodyTooLarge) {
    const tooLarge = new InvalidRequest({ description: `the request body exceeds ${error.limit} bytes` })
    return Effect.succeed(HttpServerResponse.setStatus(renderedError(tooLarge), 413))
  }
  if (error instanceof UnreadableBody || error instanceof MalformedJson) {
    const description = error instanceof MalformedJson ? "the body is not valid JSON" : "the request body could not be read"
    return Effect.succeed(renderedError(new InvalidRequest({ description })))
  }
  const oauth = toOAuthError(error)
  const response = renderedError(oauth, context)
  return oauth.status >= 500
    ? Effect.as(Effect.logError("request failed").pipe(Effect.annotateLogs("detail", logDetail(error))), response)
    : Effect.succeed(response)
}

/** Answer every failure of `effect` with `errorResponse`. */
export const orErrorResponse = <E, R>(
  effect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
  context?: RenderContext
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, R> =>
  Effect.catchAll(effect, (error) => errorResponse(error, context))

/** The pages' Content-Security-Policy; `formActions`: sources a form may also submit (or be redirected) to. */
const pageCsp = (formActions: ReadonlyArray<string> = []): string =>
  `default-src 'none'; style-src 'unsafe-inline'; form-action ${["'self'", ...formActions].join(" ")}; frame-ancestors 'none'`

/** Headers for server-rendered pages: no caching, no framing, no scripts or foreign resources. */
const PAGE_HEADERS = {
  ...NO_STORE,
  "content-security-policy": pageCsp(),
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer"
} as const

/**
 * A server-rendered HTML page. A page whose form's answer redirects elsewhere
 * (the consent page: to the client) names that target in `formActions`:
 * browsers apply `form-action` to the redirect too.
 */
export const htmlResponse = (
  html: string,
  options: {
    readonly status?: number
    readonly headers?: Record<string, string>
    readonly formActions?: ReadonlyArray<string>
  } = {}
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(html, {
    status: options.status ?? 200,
    contentType: "text/html; charset=utf-8",
    headers: {
      ...PAGE_HEADERS,
      ...(options.formActions === undefined ? {} : { "content-security-policy": pageCsp(options.formActions) }),
      ...options.headers
    }
  })

/** A `302 Found` to `location`, never cached (it may carry a code). */
export const redirectResponse = (
  location: string,
  headers: Record<string, string> = {}
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.empty({ status: 302, headers: { ...NO_STORE, location, ...headers } })
