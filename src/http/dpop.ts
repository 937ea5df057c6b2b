/**
 * DPoP (RFC 9449) at the HTTP edge: the proof a request carries, with the
 * method and the URLs it may have been addressed to, for the engine's check
 * (`oauth/dpop.ts`); and the `DPoP-Nonce` a response hands out when the server
 * requires nonces.
 */
import { HttpServerResponse } from "@effect/platform"
import { Effect, Option } from "effect"
import { OAuthConfig } from "../oauth/config.ts"
import { currentDpopNonce, type DpopEndpoint, type DpopProofInput } from "../oauth/dpop.ts"
import { isLoopbackHost } from "../oauth/loopback.ts"
import type { Crypto } from "../services/Crypto.ts"
import type { RequestHeaders } from "./body.ts"
import { McpEndpointConfig } from "./mcp/config.ts"

/** What DPoP needs of a request: its headers (lower-case names) and its method (`htm`). */
export interface ResourceRequest extends RequestHeaders {
  readonly method: string
}

/** The hostname of a `Host` value (`name[:port]`, `[v6][:port]`). */
const hostnameOf = (host: string): string => {
  if (host.startsWith("[")) return host.slice(1, Math.max(1, host.indexOf("]")))
  const colon = host.lastIndexOf(":")
  return colon === -1 ? host : host.slice(0, colon)
}

/**
 * The URLs a request to `path` may have been addressed to, for `htu`: the
 * endpoint under the public URL (what the metadata publishes), and, when the
 * request's `Host` is one of the aliases this server answers to (its own
 * listen address, loopback names, configured hosts), the endpoint under that
 * host, with the public URL's scheme (or `http` on a loopback host, which no
 * proxy fronts).
 */
export const requestUrls = (
  request: ResourceRequest,
  path: string
): Effect.Effect<ReadonlyArray<string>, never, OAuthConfig> =>
  Effect.gen(function*() {
    const config = yield* OAuthConfig
    const urls = [`${config.issuer}${path}`]
    const host = request.headers["host"]?.trim().toLowerCase()
    const endpoint = yield* Effect.serviceOption(McpEndpointConfig)
    if (host !== undefined && Option.isSome(endpoint) && endpoint.value.allowedHosts.has(host)) {
      const scheme = isLoopbackHost(hostnameOf(host)) ? "http:" : new URL(config.issuer).protocol
      urls.push(`${scheme}//${host}${path}`)
    }
    return urls
  })

/** The request's DPoP proof, method and URLs; `undefined` when it has no `DPoP` header. */
export const dpopProofInput = (
  request: ResourceRequest,
  path: string
): Effect.Effect<DpopProofInput | undefined, never, OAuthConfig> => {
  const proof = request.headers["dpop"]
  if (proof === undefined) return Effect.succeed(undefined)
  return Effect.map(requestUrls(request, path), (urls) => ({ proof, method: request.method, urls }))
}

/**
 * `response` with the endpoint's current `DPoP-Nonce` when the server
 * requires nonces (RFC 9449 §8.2: a fresh nonce may ride on any response,
 * which saves the client a `use_dpop_nonce` round trip when the nonce
 * rotates); unchanged otherwise.
 */
export const withDpopNonce = (
  response: HttpServerResponse.HttpServerResponse,
  endpoint: DpopEndpoint
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, OAuthConfig | Crypto> =>
  Effect.map(currentDpopNonce(endpoint), (nonce) =>
    Option.match(nonce, {
      onNone: () => response,
      onSome: (value) => HttpServerResponse.setHeader(response, "dpop-nonce", value)
    }))
