/**
 * Redirect URI rules: what a client may register (RFC 7591, OAuth 2.1 §2.3,
 * RFC 8252 for native apps) and how a request's redirect URI must match a
 * registered one.
 */

import { isLoopbackHost } from "./loopback.ts"

/** Whether the client registering is public (`token_endpoint_auth_method: none`) or holds a secret. */
export type ClientKind = "public" | "confidential"

/**
 * Schemes never accepted as redirect URIs: a browser runs or reads them
 * locally (`javascript:`, `data:`, `file:`, ...), or they are not a way back to
 * an application at all (`ws:`, `ftp:`, `mailto:`, ...). `http:` is handled
 * apart (loopback only).
 */
const REFUSED_SCHEMES: ReadonlySet<string> = new Set([
  "javascript",
  "vbscript",
  "data",
  "file",
  "blob",
  "about",
  "filesystem",
  "view-source",
  "ws",
  "wss",
  "ftp",
  "mailto",
  "tel",
  "sms"
])

/** RFC 3986 §3.1 scheme syntax (lower case: the URL parser lowercases it). */
const SCHEME = /^[a-z][a-z0-9+.-]*$/

/**
 * Why `uri` cannot be registered as a redirect URI, or `undefined` when it
 * can. Every client: an absolute https URI, or http on a loopback host
 * (`127.0.0.1`, `[::1]`, `localhost`: RFC 8252 §7.3), with no fragment and
 * no user info. A public client (a native app) may also register a
 * private-use scheme (RFC 8252 §7.1: `com.example.app:/cb`, `cursor://...`,
 * `vscode://...`); schemes a browser handles itself (`javascript:`, `data:`,
 * `file:`, `blob:`, `about:`, ...) are refused for everyone.
 */
export const redirectUriProblem = (uri: string, kind: ClientKind = "confidential"): string | undefined => {
  if (!URL.canParse(uri)) return "is not an absolute URI"
  const url = new URL(uri)
  if (uri.includes("#")) return "has a fragment"
  if (url.username !== "" || url.password !== "") return "has user info"
  const scheme = url.protocol.slice(0, -1)
  if (scheme === "https") return undefined
  if (scheme === "http") return isLoopbackHost(url.hostname) ? undefined : "uses http on a host that is not loopback"
  if (REFUSED_SCHEMES.has(scheme) || !SCHEME.test(scheme)) return `uses the scheme ${scheme}:, which is never a redirect URI`
  return kind === "public"
    ? undefined
    : "must use https, or http on a loopback address (private-use schemes are for public clients)"
}

/** `http://<loopback host>[:port]<path and query>`, split: the form RFC 8252 §7.3 lets vary in its port. */
const LOOPBACK_REDIRECT = /^http:\/\/(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|localhost)(?::(\d{1,5}))?([/?][^#]*)?$/

interface LoopbackParts {
  readonly host: string
  readonly port: number | undefined
  /** Everything after the authority, exactly as written ("" when there is none). */
  readonly rest: string
}

const loopbackParts = (uri: string): LoopbackParts | undefined => {
  const match = LOOPBACK_REDIRECT.exec(uri)
  if (match === null) return undefined
  const [, host = "", port, rest = ""] = match
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return undefined
  // The parser must agree that this is that loopback host (no trick the pattern missed).
  if (!URL.canParse(uri) || !isLoopbackHost(new URL(uri).hostname)) return undefined
  return { host, port: port === undefined ? undefined : Number(port), rest }
}

/**
 * Whether a request's redirect URI matches one the client registered: the
 * exact string, except that a loopback http redirect URI (RFC 8252 §7.3)
 * matches whatever port the client presents (registered with a port or
 * without one), the host, path and query still exactly as registered.
 */
export const matchRedirectUri = (registered: ReadonlyArray<string>, requested: string): boolean => {
  if (registered.includes(requested)) return true
  const asked = loopbackParts(requested)
  if (asked === undefined) return false
  return registered.some((uri) => {
    const known = loopbackParts(uri)
    return known !== undefined && known.host === asked.host && known.rest === asked.rest
  })
}
