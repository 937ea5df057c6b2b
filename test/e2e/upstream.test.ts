/**
 * Upstream mode end to end: the server process federated to a real
 * oidc-provider on loopback, the official MCP SDK client. The SDK registers
 * and sends the user to our `/authorize`; a scripted browser follows it to
 * the provider, signs in and consents there, comes back through our
 * `/callback` to the client's redirect URI. `upstream_userinfo` then calls the
 * provider with the stored provider token, and again after that token has
 * expired (the server refreshes it upstream on the way), which `/metrics`
 * counts. The issuer was discovered once at startup, without a warning.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { setTimeout as sleep } from "node:timers/promises"
import { authorizeAndConnect, MemoryOAuthProvider, readRedirect, REDIRECT_URI } from "../support/mcpClient.ts"
import { displayName, driveInteraction, type OidcProvider, startOidcProvider } from "../support/oidcProvider.ts"
import { sampleOf, scrape } from "../support/prometheus.ts"
import { freePort } from "../support/redisServer.ts"
import { type ServerProcess, startServer } from "../support/server.ts"

const PROVIDER_TTL_SECONDS = 3

let upstream: OidcProvider
let server: ServerProcess
beforeAll(async () => {
  // The provider must know our callback before we start, and we must know the provider: fix our port first.
  const port = await freePort()
  upstream = await startOidcProvider({ redirectUri: `http://127.0.0.1:${port}/callback`, accessTokenTtlSeconds: PROVIDER_TTL_SECONDS })
  server = await startServer({
    env: {
      PORT: String(port),
      STORE: "memory",
      UPSTREAM_ISSUER: upstream.issuer,
      UPSTREAM_CLIENT_ID: upstream.clientId,
      UPSTREAM_CLIENT_SECRET: upstream.clientSecret,
      UPSTREAM_SCOPES: "openid profile offline_access",
      UPSTREAM_REFRESH_SKEW_SECONDS: "0",
      METRICS: "on"
    }
  })
}, 60_000)
afterAll(async () => {
  await server?.stop()
  await upstream?.close()
})

/** The user's browser: our /authorize, the provider's login and consent, our /callback, the client's redirect URI. */
const throughUpstream = (login: string) => async (authorizationUrl: URL) =>
  readRedirect(await driveInteraction(upstream, authorizationUrl.href, { stopAt: REDIRECT_URI, login }))

describe("upstream mode with the MCP SDK client and a real oidc-provider", () => {
  it("discovers the issuer at startup, without a warning", async () => {
    const deadline = Date.now() + 10_000
    while (!server.lines().some((line) => line.includes("\"message\":\"upstream metadata discovered\""))) {
      if (Date.now() > deadline) throw new Error(`no discovery at startup:\n${server.lines().join("\n")}`)
      await sleep(100)
    }
    expect(server.lines().filter((line) => line.includes("\"logLevel\":\"WARN\""))).toEqual([])
  })

  it("authorizes through the provider; upstream_userinfo works, and again after the provider token expired", { timeout: 60_000 }, async () => {
    const provider = new MemoryOAuthProvider("mcp:tools mcp:upstream")
    const { client } = await authorizeAndConnect(server.url, provider, throughUpstream("hana"))
    try {
      const tools = await client.listTools()
      expect(tools.tools.map((t) => t.name)).toEqual(expect.arrayContaining(["whoami", "upstream_userinfo"]))
      const me = await client.callTool({ name: "whoami", arguments: {} })
      expect((me.structuredContent as Record<string, unknown>)["subject"]).toBe("hana")

      const first = await client.callTool({ name: "upstream_userinfo", arguments: {} })
      expect(first.isError ?? false).toBe(false)
      expect(first.structuredContent).toEqual({ sub: "hana", name: displayName("hana") })
      expect(upstream.grants()).toEqual(["authorization_code"])

      // The provider's access token expires (the provider allows no clock leeway): the next call refreshes it first.
      await sleep(PROVIDER_TTL_SECONDS * 1000 + 500)
      const second = await client.callTool({ name: "upstream_userinfo", arguments: {} })
      expect(second.isError ?? false).toBe(false)
      expect(second.structuredContent).toEqual({ sub: "hana", name: displayName("hana") })
      expect(upstream.grants()).toEqual(["authorization_code", "refresh_token"])
      // Our own token was not refreshed: the upstream refresh happened inside the server.
      expect(provider.tokenHistory.length).toBe(1)
      const metrics = await scrape(`${server.url}/metrics`)
      expect(sampleOf(metrics, "mcp_upstream_refreshes_total", { provider: "upstream", outcome: "ok" })).toBe(1)
      expect(sampleOf(metrics, "mcp_oauth_tokens_issued_total", { grant_type: "authorization_code", token: "access" })).toBe(1)
    } finally {
      await client.close()
    }
    const secrets = [upstream.clientSecret, ...provider.tokenHistory.flatMap((t) => [t.access_token, t.refresh_token ?? ""])]
      .filter((s) => s.length > 0)
    for (const line of [...server.lines(), ...server.errors()]) {
      for (const secret of secrets) expect(line.includes(secret)).toBe(false)
    }
  })
})
