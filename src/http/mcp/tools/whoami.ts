/**
 * The `whoami` example tool: who the bearer token says the caller is
 * (subject, client, scopes) and, in a 2025 session, which MCP session it is
 * using. Written with `McpTool.make`, as a user's tool would be.
 */
import { Effect, Schema } from "effect"
import * as McpTool from "../McpTool.ts"

/** The scope the example tools of local mode need. */
export const TOOLS_SCOPE = "mcp:tools"

/** What `whoami` answers, as `structuredContent`. */
const Identity = Schema.Struct({
  subject: Schema.String,
  clientId: Schema.String,
  scopes: Schema.Array(Schema.String),
  protocolVersion: Schema.String,
  sessionId: Schema.optional(Schema.String)
})

/** `whoami`: needs `mcp:tools`; answers as text (JSON) and as `structuredContent`. */
export const whoami: McpTool.McpTool = McpTool.make({
  name: "whoami",
  title: "Who am I",
  description: "Tells who the caller is: the token's subject, client and scopes, and the protocol revision (and MCP session) in use.",
  output: Identity,
  scopes: [TOOLS_SCOPE],
  annotations: { readOnlyHint: true },
  run: (_input, call) =>
    Effect.succeed(McpTool.json({
      subject: call.token.subject,
      clientId: call.token.clientId,
      scopes: [...call.token.scopes],
      protocolVersion: call.protocolVersion,
      ...(call.sessionId === undefined ? {} : { sessionId: call.sessionId })
    }))
})
