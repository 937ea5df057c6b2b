/**
 * `GET /callback` in upstream mode: the upstream provider's redirect back to
 * us. The engine redeems the upstream code, keeps the provider tokens under
 * the pending authorization and approves the user it names; the user then
 * goes on to the client with our code (or the client's error).
 */
import type { HttpServerRequest } from "@effect/platform"
import { Effect } from "effect"
import { redirectLocation } from "../../oauth/authorize.ts"
import { completeUpstreamAuthorization } from "../../oauth/federation.ts"
import { queryParams } from "../body.ts"
import { redirectResponse } from "../respond.ts"
import { inUpstreamMode } from "./authorize.ts"

/**
 * Redirect (302) to the client with our code, or with the error that ended
 * the authorization. A callback whose state is missing, unknown or does not
 * match gets a page (400): there is no client it could safely go to.
 */
export const upstreamCallback = (request: HttpServerRequest.HttpServerRequest) =>
  inUpstreamMode(Effect.gen(function*() {
    const params = yield* queryParams(request)
    const redirect = yield* completeUpstreamAuthorization({
      state: params["state"],
      code: params["code"],
      error: params["error"],
      iss: params["iss"]
    })
    return redirectResponse(redirectLocation(redirect))
  }))
