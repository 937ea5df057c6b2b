/**
 * RFC 8707 resource indicators: which configured resource a request names.
 * Clients write the same resource in several ways (`https://host:443/` for
 * `https://host`, `/mcp/` for `/mcp`: the MCP Inspector adds the slash), so a
 * request's value is compared in a canonical form, and the token carries the
 * configured string, one form for every way of asking.
 */
import { Effect } from "effect"
import { InvalidTarget } from "../errors/OAuthError.ts"

/**
 * The canonical form of an absolute URI, for comparison: RFC 3986 §6.2.2
 * and §6.2.3 normalization (scheme and host in lower case, the default port
 * dropped, an empty path as "/", dot segments resolved, by the URL parser;
 * percent-encoding normalized), then trailing slashes dropped from the path, so `/mcp/` and
 * `/mcp`, `https://host/` and `https://host` are one resource. The query is
 * kept. `undefined` when `uri` is not an absolute URI without a fragment.
 */
export const canonicalResource = (uri: string): string | undefined => {
  if (!URL.canParse(uri) || uri.includes("#")) return undefined
  const url = new URL(uri)
  const path = normalizePercentEncoding(url.pathname).replace(/\/+$/, "")
  return `${url.protocol}//${url.host}${path}${normalizePercentEncoding(url.search)}`
}

/** RFC 3986 §6.2.2.1-2: percent-encoded unreserved characters decoded, other escapes in upper case. */
export const normalizePercentEncoding = (text: string): string =>
  text.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => {
    const char = String.fromCharCode(Number.parseInt(hex, 16))
    return /^[A-Za-z0-9\-._~]$/.test(char) ? char : `%${hex.toUpperCase()}`
  })

/** Whether two resource indicators name the same resource (their canonical forms are equal). */
export const sameResource = (a: string, b: string): boolean => {
  const left = canonicalResource(a)
  return left !== undefined && left === canonicalResource(b)
}

/**
 * The one resource of a request (RFC 8707 §2), as the configured string it
 * names: `undefined` when the request names none; `InvalidTarget` for several
 * values, a value that is not an absolute URI without a fragment, or one
 * this server does not serve.
 */
export const resolveResource = (
  resource: string | ReadonlyArray<string> | undefined,
  allowed: ReadonlyArray<string>
): Effect.Effect<string | undefined, InvalidTarget> => {
  const values = resource === undefined ? [] : typeof resource === "string" ? [resource] : resource
  if (values.length === 0) return Effect.succeed(undefined)
  const [value] = values
  if (values.length > 1 || value === undefined) return Effect.fail(new InvalidTarget({ description: "one resource per request" }))
  if (canonicalResource(value) === undefined) {
    return Effect.fail(new InvalidTarget({ description: "resource must be an absolute URI without a fragment" }))
  }
  const configured = allowed.find((candidate) => sameResource(candidate, value))
  return configured === undefined
    ? Effect.fail(new InvalidTarget({ description: "resource is not served by this authorization server" }))
    : Effect.succeed(configured)
}
