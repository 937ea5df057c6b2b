/**
 * A real upstream OpenID provider for the federation tests: oidc-provider 9
 * on a free loopback port, with one static confidential client, PKCE required,
 * its development login and consent pages, a short access-token lifetime and
 * refresh tokens (OIDC's `offline_access`, granted when the request carries
 * `prompt=consent`). `driveInteraction` plays the user in a browser: it
 * follows the redirects with a cookie jar and submits the forms.
 */
import { Effect } from "effect"
import { generateKeyPairSync } from "node:crypto"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import Provider from "oidc-provider"

export interface OidcProviderOptions {
  /** The redirect URI registered for the client: our server's `/callback`. */
  readonly redirectUri: string | ReadonlyArray<string>
  readonly clientId?: string
  readonly clientSecret?: string
  /** Lifetime of the provider's access tokens, in seconds (default 3). */
  readonly accessTokenTtlSeconds?: number
}

export interface OidcProvider {
  /** The issuer, `http://127.0.0.1:<port>`, which is also the discovery base. */
  readonly issuer: string
  readonly clientId: string
  readonly clientSecret: string
  readonly redirectUris: ReadonlyArray<string>
  readonly accessTokenTtlSeconds: number
  /** The `grant_type` of every successful token request so far, in order. */
  readonly grants: () => ReadonlyArray<string>
  readonly close: () => Promise<void>
}

/** The display name the provider gives an account (claim `name`): deterministic, so tests can check it. */
export const displayName = (accountId: string): string => `User ${accountId}`

/** Start the provider; `close` stops it. */
export const startOidcProvider = async (options: OidcProviderOptions): Promise<OidcProvider> => {
  const clientId = options.clientId ?? "mcp-upstream-client"
  const clientSecret = options.clientSecret ?? "upstream-client-secret-0123456789"
  const accessTokenTtlSeconds = options.accessTokenTtlSeconds ?? 3
  const redirectUris = typeof options.redirectUri === "string" ? [options.redirectUri] : [...options.redirectUri]

  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  const { port } = server.address() as AddressInfo
  const issuer = `http://127.0.0.1:${port}`

  const signingKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" })
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: redirectUris,
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic"
    }],
    jwks: { keys: [{ ...signingKey, use: "sig", alg: "RS256" }] },
    cookies: { keys: ["oidc-fixture-cookie-key-0123456789"] },
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    claims: { openid: ["sub"], profile: ["name"] },
    // No leeway: an access token past its lifetime is refused at once, so an expired one cannot pass for fresh.
    clockTolerance: 0,
    ttl: { AccessToken: accessTokenTtlSeconds, IdToken: 3600, RefreshToken: 86400, Interaction: 600, Session: 3600, Grant: 86400 },
    findAccount: (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: () => ({ sub, name: displayName(sub) })
    })
  })
  const grants: Array<string> = []
  provider.on("grant.success", (ctx) => {
    const grantType = (ctx as { oidc?: { params?: { grant_type?: unknown } } }).oidc?.params?.grant_type
    grants.push(typeof grantType === "string" ? grantType : "unknown")
  })
  server.on("request", provider.callback())

  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  return { issuer, clientId, clientSecret, redirectUris, accessTokenTtlSeconds, grants: () => grants, close }
}

/** The provider as a scoped resource: stopped when the scope closes. */
export const oidcProvider = (options: OidcProviderOptions) =>
  Effect.acquireRelease(
    Effect.promise(() => startOidcProvider(options)),
    (provider) => Effect.promise(provider.close)
  )

interface Cookie {
  readonly value: string
  readonly path: string
}

/** A browser's cookie jar, just enough for the provider's interaction cookies: by origin, name and path prefix. */
export class CookieJar {
  private readonly jars = new Map<string, Map<string, Cookie>>()

  /** Remember the `Set-Cookie` headers of a response from `url`. */
  store(url: URL, response: Response): void {
    const jar = this.jars.get(url.origin) ?? new Map<string, Cookie>()
    this.jars.set(url.origin, jar)
    for (const header of response.headers.getSetCookie()) {
      const [pair = "", ...attributes] = header.split(";").map((part) => part.trim())
      const at = pair.indexOf("=")
      if (at <= 0) continue
      const name = pair.slice(0, at)
      const value = pair.slice(at + 1)
      const attribute = (key: string) =>
        attributes.find((a) => a.toLowerCase().startsWith(`${key}=`))?.slice(key.length + 1)
      const path = attribute("path") ?? "/"
      // Cleared cookies come back empty, expired in 1970 or with Max-Age=0.
      const cleared = value === "" || attribute("max-age") === "0" || (attribute("expires") ?? "").includes("1970")
      if (cleared) jar.delete(`${name};${path}`)
      else jar.set(`${name};${path}`, { value, path })
    }
  }

  /** The `Cookie` header for a request to `url`. */
  header(url: URL): string {
    const jar = this.jars.get(url.origin)
    if (jar === undefined) return ""
    return [...jar.entries()]
      .filter(([, cookie]) => url.pathname.startsWith(cookie.path))
      .map(([key, cookie]) => `${key.slice(0, key.indexOf(";"))}=${cookie.value}`)
      .join("; ")
  }
}

export interface DriveOptions {
  /** Stop at the first redirect whose location starts with this (default: the client's first redirect URI). */
  readonly stopAt?: string
  /** The login typed into the dev login form: it becomes the account id, the `sub` (default `alice`). */
  readonly login?: string
  /** Cancel at the login page instead of signing in (the provider answers `access_denied`). */
  readonly abort?: boolean
  readonly jar?: CookieJar
}

const formAction = (html: string): string | undefined => /<form[^>]*action="([^"]+)"[^>]*method="post"/i.exec(html)?.[1]
const abortLink = (html: string): string | undefined => /href="([^"]*\/abort)"/i.exec(html)?.[1]
const unescape = (value: string) => value.replace(/&amp;/g, "&").replace(/&#x2F;/gi, "/").replace(/&#47;/g, "/")

/**
 * Play the user: fetch `authorizationUrl`, follow redirects (cookies kept),
 * sign in on the dev login page and agree on the consent page, until a
 * redirect to `stopAt`, whose location is returned without being fetched.
 * Starting from our `/authorize`, it goes through our server to the provider.
 */
export const driveInteraction = async (
  provider: Pick<OidcProvider, "redirectUris">,
  authorizationUrl: string,
  options: DriveOptions = {}
): Promise<string> => {
  const stopAt = options.stopAt ?? provider.redirectUris[0] ?? ""
  const jar = options.jar ?? new CookieJar()
  let url = new URL(authorizationUrl)
  let init: RequestInit = { method: "GET" }
  for (let step = 0; step < 20; step++) {
    const headers = new Headers(init.headers)
    const cookie = jar.header(url)
    if (cookie !== "") headers.set("cookie", cookie)
    const response = await fetch(url, { ...init, headers, redirect: "manual" })
    jar.store(url, response)
    const location = response.headers.get("location")
    if (response.status >= 300 && response.status < 400 && location !== null) {
      await response.body?.cancel()
      const next = new URL(location, url)
      if (next.href.startsWith(stopAt)) return next.href
      url = next
      init = { method: "GET" }
      continue
    }
    const html = await response.text()
    if (response.status !== 200) throw new Error(`${url.pathname} answered ${response.status}: ${html.slice(0, 300)}`)
    const action = formAction(html)
    if (action === undefined) throw new Error(`no form on ${url.pathname}: ${html.slice(0, 300)}`)
    if (html.includes(`name="prompt" value="login"`)) {
      const abort = abortLink(html)
      if (options.abort === true && abort !== undefined) {
        url = new URL(unescape(abort), url)
        init = { method: "GET" }
        continue
      }
      const form = new URLSearchParams({ prompt: "login", login: options.login ?? "alice", password: "any password" })
      init = { method: "POST", body: form, headers: { "content-type": "application/x-www-form-urlencoded" } }
    } else if (html.includes(`name="prompt" value="consent"`)) {
      const form = new URLSearchParams({ prompt: "consent" })
      init = { method: "POST", body: form, headers: { "content-type": "application/x-www-form-urlencoded" } }
    } else {
      throw new Error(`unexpected page at ${url.pathname}: ${html.slice(0, 300)}`)
    }
    url = new URL(unescape(action), url)
  }
  throw new Error("too many steps before reaching the redirect URI")
}
