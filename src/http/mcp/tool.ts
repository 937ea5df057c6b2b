/**
 * What an MCP tool is to the endpoint: a name, a description, the input's
 * JSON Schema, the scopes a token needs to call it (seed 002's tool-level
 * scopes), and the call itself. Tools are built in a layer, so their calls
 * need nothing more from the endpoint.
 */
import { Context, type Effect } from "effect"
import type { VerifiedAccessToken } from "../../oauth/accessTokens.ts"
import type { Session } from "../../schema/session.ts"

/** Who is calling: the verified bearer token and the MCP session it is using. */
export interface ToolContext {
  readonly token: VerifiedAccessToken
  readonly session: Session
}

/** An MCP `CallToolResult`: content for the model; `isError` for a failure the model should see. */
export interface ToolResult {
  readonly content: ReadonlyArray<{ readonly type: "text"; readonly text: string }>
  readonly structuredContent?: Readonly<Record<string, unknown>>
  readonly isError?: boolean
}

export interface McpTool {
  readonly name: string
  /** A display name for people (MCP 2025-06-18); `tools/list` omits it when absent. */
  readonly title?: string
  readonly description: string
  /** JSON Schema of the arguments (an object schema). */
  readonly inputSchema: Readonly<Record<string, unknown>>
  /** JSON Schema of `structuredContent` (an object schema); clients validate results against it. */
  readonly outputSchema?: Readonly<Record<string, unknown>>
  /** Scopes the token must carry; missing ones answer 403 `insufficient_scope`. */
  readonly requiredScopes: ReadonlyArray<string>
  readonly call: (context: ToolContext, args: Readonly<Record<string, unknown>>) => Effect.Effect<ToolResult>
}

/** The tools the MCP endpoint serves. */
export class McpTools extends Context.Tag("mcp-oauth-store/McpTools")<McpTools, ReadonlyArray<McpTool>>() {}
