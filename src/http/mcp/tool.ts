/**
 * What an MCP tool is to the endpoint: a name, a description, the JSON
 * Schemas of its input and output, the scopes a token needs to call it (seed
 * 002's tool-level scopes), and the call itself, which either completes or,
 * in protocol revision 2026-07-28, asks the client for input first
 * (multi-round tools). Users build tools with `McpTool` (`./McpTool.ts`).
 */
import { Context, type Effect } from "effect"
import type { VerifiedAccessToken } from "../../oauth/accessTokens.ts"
import type { ClientCapabilities } from "./envelope.ts"

/** One content block of a tool result (text, image, audio, resource link, embedded resource). */
export type ContentBlock = { readonly type: string } & Readonly<Record<string, unknown>>

/** An MCP `CallToolResult`: content for the model; `isError` for a failure the model should see. */
export interface ToolResult {
  readonly content: ReadonlyArray<ContentBlock>
  /** Structured output (an object in the 2025 revisions; any JSON value in 2026-07-28). */
  readonly structuredContent?: unknown
  readonly isError?: boolean
}

/** A request the client must fulfil before the tool can go on (embedded in an input-required result). */
export interface InputRequest {
  readonly method: "elicitation/create" | "sampling/createMessage" | "roots/list"
  readonly params?: Readonly<Record<string, unknown>>
}

/** What a call ends with: a result, or (2026-07-28) a round of questions to the client. */
export type ToolOutcome =
  | { readonly _tag: "Complete"; readonly result: ToolResult }
  | {
    readonly _tag: "InputRequired"
    /** The requests, keyed by names the tool chooses; the answers come back under the same keys. */
    readonly inputRequests: Readonly<Record<string, InputRequest>>
    /** What the tool needs to remember for the next round: sealed by the server, never readable by the client. */
    readonly state?: unknown
  }

/** One call of a tool: who calls, over which protocol, and what an earlier round left. */
export interface ToolCall {
  /** The verified bearer token: subject, client, scopes, grant, expiry. */
  readonly token: VerifiedAccessToken
  /** The protocol revision of the request (`2026-07-28`, or the session's 2025 revision). */
  readonly protocolVersion: string
  /** The MCP session (2025 revisions only). */
  readonly sessionId?: string
  /** What the client can do, as this request declares it (2026-07-28; empty in 2025 sessions). */
  readonly clientCapabilities: ClientCapabilities
  /** The client's answers to the previous round's input requests, by key: untrusted input. */
  readonly inputResponses: Readonly<Record<string, unknown>>
  /** The state the previous round left (opened and verified by the server); `undefined` on a first round. */
  readonly state: unknown
}

/** A tool as the endpoint serves it: everything it needs is already provided. */
export interface McpToolDefinition {
  readonly name: string
  /** A display name for people (MCP 2025-06-18); `tools/list` omits it when absent. */
  readonly title?: string
  readonly description: string
  /** JSON Schema of the arguments (an object schema). */
  readonly inputSchema: Readonly<Record<string, unknown>>
  /** JSON Schema of `structuredContent`; clients validate results against it. */
  readonly outputSchema?: Readonly<Record<string, unknown>>
  /** MCP tool annotations (`readOnlyHint`, `destructiveHint`, ...). */
  readonly annotations?: Readonly<Record<string, unknown>>
  /** Scopes the token must carry; missing ones answer 403 `insufficient_scope`. */
  readonly requiredScopes: ReadonlyArray<string>
  readonly call: (args: Readonly<Record<string, unknown>>, call: ToolCall) => Effect.Effect<ToolOutcome>
}

/** The tools the MCP endpoint serves. */
export class McpTools extends Context.Tag("mcp-oauth-store/McpTools")<McpTools, ReadonlyArray<McpToolDefinition>>() {}
