/**
 * The upstream fixture itself: a real oidc-provider that requires PKCE,
 * issues refresh tokens with `offline_access` + `prompt=consent`, and whose
 * login and consent pages `driveInteraction` gets through.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import { driveInteraction, type OidcProvider, startOidcProvider } from "../support/oidcProvider.ts"

const CALLBACK = "http://127.0.0.1:9/callback"
const VERIFIER = "fixture-verifier-".padEnd(64, "v")

let provider: OidcProvider
beforeAll(async () => {
  provider = await startOidcProvider({ redirectUri: CALLBACK, accessTokenTtlSeconds: 60 })
})
afterAll(() => provider.close())

const authorizationUrl = (params: Record<string, string> = {}) => {
  const url = new URL(`${provider.issuer}/auth`)
  const query = {
    response_type: "code",
    client_id: provider.clientId,
    redirect_uri: CALLBACK,
    scope: "openid profile offline_access",
    prompt: "consent",
    state: "fixture-state",
    code_challenge: createHash("sha256").update(VERIFIER).digest("base64url"),
    code_challenge_method: "S256",
    ...params
  }
  for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value)
  return url.href
}

const basic = () => `Basic ${Buffer.from(`${provider.clientId}:${provider.clientSecret}`).toString("base64")}`

describe("oidc-provider fixture", () => {
  it("publishes OIDC discovery with S256 PKCE", async () => {
    const metadata = await (await fetch(`${provider.issuer}/.well-known/openid-configuration`)).json() as Record<string, unknown>
    expect(metadata).toMatchObject({ issuer: provider.issuer, token_endpoint: `${provider.issuer}/token`, code_challenge_methods_supported: ["S256"] })
  })

  it("refuses a request without PKCE", async () => {
    const location = await driveInteraction(provider, authorizationUrl({ code_challenge: "", code_challenge_method: "" }))
    expect(new URL(location).searchParams.get("error")).toBe("invalid_request")
  })

  it("signs in and consents; the code buys an access token and a refresh token; cancelling answers access_denied", async () => {
    const location = new URL(await driveInteraction(provider, authorizationUrl(), { login: "zoe" }))
    expect(location.searchParams.get("state")).toBe("fixture-state")
    const code = location.searchParams.get("code") ?? ""
    const response = await fetch(`${provider.issuer}/token`, {
      method: "POST",
      headers: { authorization: basic(), "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: CALLBACK, code_verifier: VERIFIER })
    })
    const tokens = await response.json() as Record<string, unknown>
    expect(tokens).toMatchObject({ token_type: "Bearer", expires_in: 60, scope: "openid profile offline_access" })
    expect(typeof tokens["refresh_token"]).toBe("string")
    const userinfo = await fetch(`${provider.issuer}/me`, { headers: { authorization: `Bearer ${String(tokens["access_token"])}` } })
    expect(await userinfo.json()).toEqual({ sub: "zoe", name: "User zoe" })

    const cancelled = new URL(await driveInteraction(provider, authorizationUrl(), { abort: true }))
    expect(cancelled.searchParams.get("error")).toBe("access_denied")
  })
})
