/**
 * Client ID Metadata Documents end to end: the MCP SDK client, given a
 * `clientMetadataUrl`, sees `client_id_metadata_document_supported` and uses
 * the URL as its client id instead of registering; the server process
 * fetches the document from a local https document server (a certificate
 * made for this run, trusted through `NODE_EXTRA_CA_CERTS`; loopback allowed
 * by the development switch `CLIENT_METADATA_ALLOW_LOOPBACK`), the consent
 * page shows the document's host as the verified identity, and the user
 * signs in; the client calls a tool. Documents that cannot be used refuse
 * their authorization on a page for the user, and other clients go on.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { openConsent, submitConsent } from "../http/consentBrowser.ts"
import { type Certificate, type DocumentServer, makeCertificate, removeCertificate, startDocumentServer } from "../support/documentServer.ts"
import { authorizeAndConnect, MemoryOAuthProvider, readRedirect, REDIRECT_URI } from "../support/mcpClient.ts"
import { type ServerProcess, startServer } from "../support/server.ts"

const ALICE_KEY = "alice-cimd-key-0123456789"

/** The SDK's provider with a client id metadata document URL (SEP-991). */
class DocumentClientProvider extends MemoryOAuthProvider {
  constructor(readonly clientMetadataUrl: string) {
    super()
  }
}

let certificate: Certificate
let documents: DocumentServer
let server: ServerProcess

beforeAll(async () => {
  certificate = makeCertificate()
  documents = await startDocumentServer(certificate)
  server = await startServer({
    env: { API_KEYS: `alice=${ALICE_KEY}`, CLIENT_METADATA_ALLOW_LOOPBACK: "true", NODE_EXTRA_CA_CERTS: certificate.certFile }
  })
}, 60_000)
afterAll(async () => {
  await server.stop()
  await documents.close()
  removeCertificate(certificate)
})

/** The document an MCP client publishes at `path`: a public client without grant_types, as most send it. */
const publish = (path: string, overrides: Record<string, unknown> = {}, headers: Record<string, string> = {}) => {
  const url = `${documents.origin}${path}`
  documents.serveJson(path, {
    client_id: url,
    client_name: "Document SDK client",
    client_uri: "https://app.example",
    redirect_uris: [REDIRECT_URI],
    token_endpoint_auth_method: "none",
    ...overrides
  }, { "cache-control": "max-age=300", ...headers })
  return url
}

/** An authorization URL for a client id (what a client would send the user to). */
const authorizationUrl = (clientId: string) => {
  const url = new URL(`${server.url}/authorize`)
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    state: "s",
    code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    code_challenge_method: "S256"
  }).toString()
  return url
}

describe("Client ID Metadata Documents with the MCP SDK client", () => {
  it("the SDK client uses its document URL as client_id: fetched, shown as verified on the consent page, authorized, calls a tool", { timeout: 120_000 }, async () => {
    const url = publish("/mcp-client/metadata.json")
    const provider = new DocumentClientProvider(url)
    const { client } = await authorizeAndConnect(server.url, provider, async (authorization) => {
      expect(authorization.searchParams.get("client_id")).toBe(url)
      const form = await openConsent(authorization)
      expect(form.html).toContain(`Verified identity: <strong class="client-host">${new URL(url).host}</strong>`)
      expect(form.html).toContain("Document SDK client")
      expect(form.html).toContain("a name it chose; not verified")
      expect(form.html).toContain(`Access to: <code>${server.url}/mcp</code>`)
      const approved = await submitConsent(form, { action: "approve", apiKey: ALICE_KEY })
      expect(approved.status).toBe(302)
      return readRedirect(approved.headers.get("location"))
    })
    expect(provider.client?.client_id).toBe(url)
    const me = await client.callTool({ name: "whoami", arguments: {} })
    expect(me.isError ?? false).toBe(false)
    expect(me.structuredContent).toMatchObject({ subject: "alice", clientId: url })
    // Refresh works without grant_types in the document (the server's default policy).
    expect(provider.tokenHistory[0]?.refresh_token).toBeDefined()
    await client.close()

    const log = server.lines().join("\n")
    expect(log).toContain("client metadata document fetched")
    expect(log).not.toContain("client registered")
    // Fetched once, then served from the store for its max-age (page, consent, token).
    expect(documents.requests.filter((p) => p === "/mcp-client/metadata.json").length).toBe(1)
  })

  it("a document that cannot be used refuses its authorization on a page for the user; other clients go on", { timeout: 60_000 }, async () => {
    const mismatched = publish("/mismatched.json", { client_id: `${documents.origin}/someone-else.json` })
    const secretBased = publish("/secret.json", { token_endpoint_auth_method: "client_secret_basic" })
    documents.route("/moved.json", (_, response) => response.writeHead(302, { location: "/mcp-client/metadata.json" }).end())
    documents.route("/page.json", (_, response) => response.writeHead(200, { "content-type": "text/html" }).end("<html></html>"))
    documents.route("/huge.json", (_, response) => {
      response.writeHead(200, { "content-type": "application/json" })
      response.end(JSON.stringify({ client_id: `${documents.origin}/huge.json`, redirect_uris: [REDIRECT_URI], pad: "x".repeat(20_000) }))
    })
    const closed = await startDocumentServer(certificate)
    await closed.close()
    const cases = [
      [mismatched, "names another client_id than its URL"],
      [secretBased, "token_endpoint_auth_method must be none"],
      [`${documents.origin}/moved.json`, "redirects are not followed"],
      [`${documents.origin}/page.json`, "not application/json"],
      [`${documents.origin}/huge.json`, "larger than"],
      [`${closed.origin}/client.json`, "could not be fetched"],
      ["https://10.0.0.1/client.json", "a private address"],
      ["https://169.254.169.254/latest/meta-data/client", "a link-local address"],
      [`http://127.0.0.1:${documents.port}/mcp-client/metadata.json`, "unknown client"]
    ] as const
    for (const [clientId, reason] of cases) {
      const page = await fetch(authorizationUrl(clientId), { redirect: "manual" })
      const html = await page.text()
      expect(page.status, clientId).toBe(400)
      expect(page.headers.get("location")).toBeNull()
      expect(page.headers.get("content-type")).toContain("text/html")
      expect(html, clientId).toContain(reason)
    }
    const redirected = documents.requests.filter((p) => p === "/mcp-client/metadata.json").length
    expect(redirected).toBe(1)

    // A registered client (the SDK falls back to registration without a document URL) is untouched by all of that.
    const { client } = await authorizeAndConnect(server.url, new MemoryOAuthProvider(), async (authorization) => {
      const approved = await submitConsent(await openConsent(authorization), { action: "approve", apiKey: ALICE_KEY })
      return readRedirect(approved.headers.get("location"))
    })
    expect((await client.callTool({ name: "whoami", arguments: {} })).isError ?? false).toBe(false)
    await client.close()
  })
})
