/**
 * CORS for the endpoints a browser-based client calls with `fetch` (RFC 8414
 * and RFC 9728 discovery, the JWKS, registration, token, revocation): any
 * origin, no credentials (nothing there uses cookies), preflights answered.
 * The authorization endpoint and its consent form are navigations and get
 * none; `/mcp` gets none either (it refuses foreign origins: DNS rebinding).
 */
import { HttpServerResponse } from "@effect/platform"

const CORS_PATHS: ReadonlySet<string> = new Set([
  "/.well-known/oauth-authorization-server",
  "/.well-known/oauth-protected-resource",
  "/.well-known/oauth-protected-resource/mcp",
  "/.well-known/jwks.json",
  "/register",
  "/token",
  "/revoke"
])

/** Whether `path` is answered with CORS headers. */
export const isCorsPath = (path: string): boolean => CORS_PATHS.has(path)

const ALLOW_ORIGIN = { "access-control-allow-origin": "*" } as const

/** Response headers a browser client must read: the challenges and DPoP's nonce (RFC 9449 §7.1, §8). */
const EXPOSE_HEADERS = { "access-control-expose-headers": "www-authenticate, dpop-nonce" } as const

/** The answer to a preflight (`OPTIONS`) of a CORS path. */
export const preflight = (): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.empty({
    status: 204,
    headers: {
      ...ALLOW_ORIGIN,
      "access-control-allow-methods": "GET, POST",
      "access-control-allow-headers": "authorization, content-type, dpop, mcp-protocol-version",
      "access-control-max-age": "600"
    }
  })

/** A response of a CORS path, readable by any origin (its challenges and `DPoP-Nonce` too). */
export const allowAnyOrigin = (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.setHeaders(response, { ...ALLOW_ORIGIN, ...EXPOSE_HEADERS })
