/**
 * The consent page of the real server process: the MCP SDK client authorized
 * by a user who signs in with an API key on the page's form; the form's
 * refusals (foreign origin, wrong key, deny) as a browser sees them; and
 * nothing secret in the server's log.
 */
import { describe, expect, it } from "@effect/vitest"
import { authorizeAndConnect, MemoryOAuthProvider, readRedirect, REDIRECT_URI } from "../support/mcpClient.ts"
import { startServer } from "../support/server.ts"
import { openConsent, submitConsent } from "./consentBrowser.ts"

const ALICE_KEY = "alice-e2e-key-0123456789"

/** A fresh authorization URL for a client registered over HTTP (what the SDK would send the user to). */
const authorizationUrl = async (serverUrl: string, state: string) => {
  const registered = await fetch(`${serverUrl}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: "<b>e2e</b> client",
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code"],
      response_types: ["code"]
    })
  })
  expect(registered.status).toBe(201)
  const { client_id } = await registered.json() as { client_id: string }
  const url = new URL(`${serverUrl}/authorize`)
  url.search = new URLSearchParams({
    response_type: "code",
    client_id,
    redirect_uri: REDIRECT_URI,
    state,
    code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    code_challenge_method: "S256"
  }).toString()
  return url
}

describe("the consent page on the real server", () => {
  it("the SDK client is authorized through the form; refusals behave; the log holds no secret", { timeout: 120_000 }, async () => {
    const server = await startServer({ env: { API_KEYS: `alice=${ALICE_KEY}` } })
    try {
      const provider = new MemoryOAuthProvider()
      const { client } = await authorizeAndConnect(server.url, provider, async (url) => {
        const form = await openConsent(url)
        expect(form.html).toContain("SDK test client")
        expect(form.html).toContain("127.0.0.1:9")
        expect(form.page.headers.get("content-security-policy")).toContain(`form-action 'self' http://127.0.0.1:9`)
        expect(form.page.headers.get("set-cookie")).toContain("HttpOnly")
        expect(form.page.headers.get("set-cookie")).toContain("SameSite=Strict")
        const wrong = await submitConsent(form, { action: "approve", apiKey: "not-the-key-0123456789" })
        expect(wrong.status).toBe(401)
        const approved = await submitConsent(form, { action: "approve", apiKey: ALICE_KEY })
        expect(approved.status).toBe(302)
        return readRedirect(approved.headers.get("location"))
      })
      const me = await client.callTool({ name: "whoami", arguments: {} })
      expect(me.isError ?? false).toBe(false)
      expect(JSON.stringify(me.structuredContent)).toContain("alice")
      await client.close()

      const url = await authorizationUrl(server.url, "s-1")
      const form = await openConsent(url)
      expect(form.html).toContain("&lt;b&gt;e2e&lt;/b&gt; client")
      const forged = await submitConsent(form, { action: "approve", apiKey: ALICE_KEY, headers: { origin: "https://evil.example" } })
      expect(forged.status).toBe(403)
      const noCookie = await submitConsent({ ...form, cookie: "other=1" }, { action: "approve", apiKey: ALICE_KEY })
      expect(noCookie.status).toBe(403)
      const denied = await submitConsent(form, { action: "deny" })
      expect(denied.status).toBe(302)
      const to = new URL(denied.headers.get("location") ?? "")
      expect(to.searchParams.get("error")).toBe("access_denied")
      expect(to.searchParams.get("state")).toBe("s-1")

      const log = server.lines().join("\n")
      expect(log).toContain("authorization approved")
      expect(log).not.toContain(ALICE_KEY)
      expect(log).not.toContain("not-the-key-0123456789")
      expect(log).not.toContain(form.csrf)
      expect(log).not.toContain(form.cookie.split("=")[1])
      for (const tokens of provider.tokenHistory) expect(log).not.toContain(tokens.access_token)
    } finally {
      await server.stop()
    }
  })
})
