/**
 * What the MCP endpoint says about itself and how long multi-round state
 * lives: a narrow service the server's layer provides from its options.
 */
import { Context } from "effect"

/** The endpoint's identity and limits. */
export interface McpEndpointSettings {
  /** `serverInfo`: the implementation's name and version (stable: 2026 clients partition caches by it). */
  readonly serverInfo: { readonly name: string; readonly version: string }
  /** Instructions for the model about this server (`initialize` / `server/discover`). */
  readonly instructions?: string
  /** How long a multi-round tool's sealed `requestState` stays valid, in milliseconds. */
  readonly requestStateTtl: number
  /** The interval of SSE keep-alive comments on open streams, in milliseconds (0: none). */
  readonly keepAlive: number
  /** The scopes the endpoint needs (every tool's), named in its 401 challenge. */
  readonly scopes: ReadonlyArray<string>
  /** Origins a browser may call `/mcp` from (DNS rebinding): ours, its loopback aliases, configured extras. */
  readonly allowedOrigins: ReadonlySet<string>
  /** `Host` values `/mcp` answers to: the public URL's host, its loopback aliases, configured extras. */
  readonly allowedHosts: ReadonlySet<string>
}

/** The MCP endpoint's settings. */
export class McpEndpointConfig extends Context.Tag("mcp-oauth-store/McpEndpointConfig")<McpEndpointConfig, McpEndpointSettings>() {}
