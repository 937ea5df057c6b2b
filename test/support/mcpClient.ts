/**
 * The official MCP TypeScript SDK client against our server, the way an MCP
 * host uses it: `Client` + `StreamableHTTPClientTransport` with an
 * `OAuthClientProvider` that keeps its state in memory (so a test can carry it
 * across a server restart). The "browser" part of the authorization is done
 * with fetch: following the dev switch's redirect, or submitting the consent
 * page's form. The SDK does not check `state`; `authorizeAndConnect` does.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js"
import type { OAuthClientProvider } from "@modelcontextprotocol/sdk/client/auth.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from "@modelcontextprotocol/sdk/shared/auth.js"
import { randomBytes } from "node:crypto"

/** A loopback redirect URI nobody listens on: the test reads the code from the `Location` header. */
export const REDIRECT_URI = "http://127.0.0.1:9/callback"

/** An `OAuthClientProvider` holding everything in memory, recording what the SDK did. */
export class MemoryOAuthProvider implements OAuthClientProvider {
  client: OAuthClientInformationMixed | undefined
  stored: OAuthTokens | undefined
  verifier: string | undefined
  /** The URL the SDK asked us to send the user to. */
  authorizationUrl: URL | undefined
  /** Every `state` this provider handed out, newest last. */
  readonly states: Array<string> = []
  /** Every token set the SDK saved (first from the code, then each refresh). */
  readonly tokenHistory: Array<OAuthTokens> = []

  constructor(private readonly scope?: string) {}

  get redirectUrl(): string {
    return REDIRECT_URI
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: "SDK test client",
      redirect_uris: [REDIRECT_URI],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
      ...(this.scope === undefined ? {} : { scope: this.scope })
    }
  }

  state(): string {
    const state = randomBytes(16).toString("base64url")
    this.states.push(state)
    return state
  }

  clientInformation(): OAuthClientInformationMixed | undefined {
    return this.client
  }

  saveClientInformation(info: OAuthClientInformationMixed): void {
    this.client = info
  }

  tokens(): OAuthTokens | undefined {
    return this.stored
  }

  saveTokens(tokens: OAuthTokens): void {
    this.stored = tokens
    this.tokenHistory.push(tokens)
  }

  redirectToAuthorization(url: URL): void {
    this.authorizationUrl = url
  }

  saveCodeVerifier(verifier: string): void {
    this.verifier = verifier
  }

  codeVerifier(): string {
    if (this.verifier === undefined) throw new Error("no code verifier saved")
    return this.verifier
  }
}

/** What came back to the redirect URI. */
export interface AuthorizationResponse {
  readonly code: string
  readonly state: string | null
  readonly iss: string | null
}

/** Parse the redirect to the client; fails when it carries an error instead of a code. */
export const readRedirect = (location: string | null): AuthorizationResponse => {
  if (location === null) throw new Error("no Location header")
  const url = new URL(location)
  if (`${url.origin}${url.pathname}` !== REDIRECT_URI) throw new Error(`redirected elsewhere: ${url.origin}${url.pathname}`)
  const code = url.searchParams.get("code")
  if (code === null) throw new Error(`authorization failed: ${url.searchParams.get("error")} ${url.searchParams.get("error_description")}`)
  return { code, state: url.searchParams.get("state"), iss: url.searchParams.get("iss") }
}

/** The development switch: the authorization endpoint answers with the redirect at once. */
export const headless = async (authorizationUrl: URL): Promise<AuthorizationResponse> => {
  const response = await fetch(authorizationUrl, { redirect: "manual" })
  if (response.status !== 302) throw new Error(`expected 302 from /authorize, got ${response.status}: ${await response.text()}`)
  return readRedirect(response.headers.get("location"))
}

/** A client connected to `${serverUrl}/mcp` with `provider`'s tokens (no authorization attempted). */
export const connectWith = async (serverUrl: string, provider: MemoryOAuthProvider, sessionId?: string) => {
  const transport = new StreamableHTTPClientTransport(new URL("/mcp", serverUrl), {
    authProvider: provider,
    ...(sessionId === undefined ? {} : { sessionId })
  })
  const client = new Client({ name: "sdk-e2e", version: "1.0.0" })
  await client.connect(transport)
  return { client, transport }
}

/**
 * Connect as a new MCP host does: the first attempt meets 401, the SDK
 * discovers, registers and sends the user to `/authorize`; `authorize` plays
 * the user; the `state` coming back must be the one sent; the SDK exchanges
 * the code; the second attempt connects.
 */
export const authorizeAndConnect = async (
  serverUrl: string,
  provider: MemoryOAuthProvider,
  authorize: (url: URL) => Promise<AuthorizationResponse>
) => {
  const first = new StreamableHTTPClientTransport(new URL("/mcp", serverUrl), { authProvider: provider })
  const refused = await new Client({ name: "sdk-e2e", version: "1.0.0" }).connect(first).then(() => undefined, (error: unknown) => error)
  if (!(refused instanceof UnauthorizedError)) throw new Error(`expected the SDK to ask for authorization, got ${String(refused)}`)
  if (provider.authorizationUrl === undefined) throw new Error("the SDK did not redirect to /authorize")
  const sent = provider.authorizationUrl.searchParams.get("state")
  const answer = await authorize(provider.authorizationUrl)
  if (sent === null || answer.state !== sent) throw new Error("state mismatch: the authorization response is not for our request")
  if (answer.iss !== serverUrl) throw new Error(`iss ${answer.iss} is not the server ${serverUrl}`)
  await first.finishAuth(answer.code)
  return connectWith(serverUrl, provider)
}
