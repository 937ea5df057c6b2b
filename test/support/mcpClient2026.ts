/**
 * The MCP SDK's 2.x client (`@modelcontextprotocol/client` 2.4.0) against our
 * server: it negotiates the 2026-07-28 era through `server/discover`
 * (`versionNegotiation: { mode: "auto" }`) and falls back to the 2025
 * handshake otherwise. Same OAuth flow as the 1.x helper (`mcpClient.ts`),
 * with the 2.x provider interface (which also keeps its discovery state).
 */
import { Client, StreamableHTTPClientTransport, UnauthorizedError } from "@modelcontextprotocol/client"
import type {
  OAuthClientMetadata,
  OAuthClientProvider,
  OAuthDiscoveryState,
  StoredOAuthClientInformation,
  StoredOAuthTokens
} from "@modelcontextprotocol/client"
import { randomBytes } from "node:crypto"
import { type AuthorizationResponse, REDIRECT_URI } from "./mcpClient.ts"

/** A 2.x `OAuthClientProvider` holding everything in memory. */
export class MemoryOAuthProvider2 implements OAuthClientProvider {
  client: StoredOAuthClientInformation | undefined
  stored: StoredOAuthTokens | undefined
  verifier: string | undefined
  discovery: OAuthDiscoveryState | undefined
  authorizationUrl: URL | undefined
  readonly states: Array<string> = []

  get redirectUrl(): string {
    return REDIRECT_URI
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: "SDK 2.4 test client",
      redirect_uris: [REDIRECT_URI],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none"
    }
  }

  state(): string {
    const state = randomBytes(16).toString("base64url")
    this.states.push(state)
    return state
  }

  clientInformation(): StoredOAuthClientInformation | undefined {
    return this.client
  }

  saveClientInformation(info: StoredOAuthClientInformation): void {
    this.client = info
  }

  tokens(): StoredOAuthTokens | undefined {
    return this.stored
  }

  saveTokens(tokens: StoredOAuthTokens): void {
    this.stored = tokens
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

  saveDiscoveryState(state: OAuthDiscoveryState): void {
    this.discovery = state
  }

  discoveryState(): OAuthDiscoveryState | undefined {
    return this.discovery
  }
}

/** How the client negotiates: `auto` probes 2026-07-28 and falls back; `legacy` is the 2025 handshake. */
export type Negotiation = "auto" | "legacy"

/** What a test client is told of: the user's answer to an elicitation, and tool list changes. */
export interface ClientHooks {
  readonly answer?: (params: Record<string, unknown>) => Record<string, unknown>
  readonly onToolsChanged?: (tools: ReadonlyArray<{ readonly name: string }>) => void
}

/** A 2.x client answering elicitations with `answer` (it declares the form elicitation capability). */
export const newClient = (mode: Negotiation, hooks: ClientHooks | ((params: Record<string, unknown>) => Record<string, unknown>) = {}) => {
  const { answer, onToolsChanged } = typeof hooks === "function" ? { answer: hooks, onToolsChanged: undefined } : hooks
  const client = new Client(
    { name: "sdk2-e2e", version: "1.0.0" },
    {
      versionNegotiation: { mode },
      capabilities: answer === undefined ? {} : { elicitation: { form: {} } },
      ...(onToolsChanged === undefined ? {} : {
        listChanged: { tools: { debounceMs: 0, onChanged: (error: Error | null, tools: ReadonlyArray<{ name: string }> | null) => error === null && tools !== null && onToolsChanged(tools) } }
      })
    }
  )
  if (answer !== undefined) {
    client.setRequestHandler("elicitation/create", async (request) => ({
      action: "accept" as const,
      content: answer(request.params as Record<string, unknown>) as Record<string, string>
    }))
  }
  return client
}

/**
 * Connect as a new MCP host does: 401, discovery, registration, `/authorize`
 * (played by `authorize`; `state` checked here, as the SDK does not), code
 * exchange (the SDK checks `iss`), then the connection in `mode`.
 */
export const authorizeAndConnect2 = async (
  serverUrl: string,
  provider: MemoryOAuthProvider2,
  authorize: (url: URL) => Promise<AuthorizationResponse>,
  mode: Negotiation,
  hooks?: ClientHooks | ((params: Record<string, unknown>) => Record<string, unknown>)
) => {
  const mcpUrl = new URL("/mcp", serverUrl)
  const first = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider })
  const refused = await newClient(mode).connect(first).then(() => undefined, (error: unknown) => error)
  if (!(refused instanceof UnauthorizedError)) throw new Error(`expected the SDK to ask for authorization, got ${String(refused)}`)
  if (provider.authorizationUrl === undefined) throw new Error("the SDK did not redirect to /authorize")
  const sent = provider.authorizationUrl.searchParams.get("state")
  const response = await authorize(provider.authorizationUrl)
  if (sent === null || response.state !== sent) throw new Error("state mismatch: the authorization response is not for our request")
  await first.finishAuth(new URLSearchParams({ code: response.code, ...(response.iss === null ? {} : { iss: response.iss }) }))
  const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider })
  const client = newClient(mode, hooks)
  await client.connect(transport)
  return { client, transport }
}
