/**
 * The server span of a request, built only when a tracer is installed:
 * method, path and status. The query (codes, state), the headers (bearer
 * tokens, session ids, a redirect's code) and the body never go into it. Its
 * parent is the span already running (a mount's own request span) or else
 * the caller's `traceparent`.
 */
import { Headers, type HttpServerResponse, HttpTraceContext } from "@effect/platform"
import { Effect, Option } from "effect"
import { whenTraced } from "../internal/traced.ts"

/** The path of a URL without its query (which may carry codes or state): what a span and a log line record. */
export const pathOf = (url: string): string => {
  const at = url.indexOf("?")
  return at === -1 ? url : url.slice(0, at)
}

/** What the span records of the request: its method and path, and the headers it may find a `traceparent` in. */
export interface SpannedRequest {
  readonly method: string
  /** The path without its query. */
  readonly path: string
  readonly headers: Headers.Input
  /** The route's pattern (`http.route`), when whoever serves the request knows it without a router (the Node fast paths). */
  readonly route?: string
}

/** `handle` in a server span when a tracer is installed; `handle` itself otherwise. */
export const withRequestSpan = <E, R>(
  request: SpannedRequest,
  handle: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R> =>
  whenTraced(handle, () =>
    Effect.flatMap(Effect.option(Effect.currentSpan), (current) =>
      Effect.withSpan(
        Effect.tap(handle, (response) => Effect.annotateCurrentSpan("http.response.status_code", response.status)),
        `http.server ${request.method}`,
        {
          kind: "server",
          captureStackTrace: false,
          attributes: {
            "http.request.method": request.method,
            "url.path": request.path,
            ...(request.route === undefined ? {} : { "http.route": request.route })
          },
          ...(Option.isNone(current)
            ? { parent: Option.getOrUndefined(HttpTraceContext.fromHeaders(Headers.fromInput(request.headers))) }
            : {})
        }
      )))
