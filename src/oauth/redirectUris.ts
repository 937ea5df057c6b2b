/** Redirect URI rules: what a client may register (RFC 7591, OAuth 2.1 §2.3) and how a request must match. */

import { isLoopbackHost } from "./loopback.ts"

/**
 * Why `uri` cannot be registered as a redirect URI, or `undefined` when it
 * can: an absolute https URI, or http on a loopback host (native clients,
 * RFC 8252 §7.3), with no fragment and no user info.
 */
export const redirectUriProblem = (uri: string): string | undefined => {
  if (!URL.canParse(uri)) return "is not an absolute URI"
  const url = new URL(uri)
  if (uri.includes("#")) return "has a fragment"
  if (url.username !== "" || url.password !== "") return "has user info"
  if (url.protocol === "https:") return undefined
  if (url.protocol === "http:") return isLoopbackHost(url.hostname) ? undefined : "uses http on a host that is not loopback"
  return "must use https, or http on a loopback address"
}

/** The registered redirect URI a request names: exact string match only. */
export const matchRedirectUri = (registered: ReadonlyArray<string>, requested: string): boolean =>
  registered.includes(requested)
