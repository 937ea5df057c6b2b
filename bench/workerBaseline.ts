/**
 * The baseline Worker of `bench/worker.ts`: Effect's platform serving one
 * JSON answer through `HttpApp.toWebHandler`, with no store, no crypto and no
 * OAuth. Beside it, the server's Worker shows what the server itself adds to
 * the bundle, to an isolate's first request and to each request after it.
 */
import { HttpApp, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"

const handler = HttpApp.toWebHandler(Effect.succeed(HttpServerResponse.unsafeJson({ issuer: "http://127.0.0.1" })))

export default {
  fetch: (request: Request): Promise<Response> => handler(request)
}
