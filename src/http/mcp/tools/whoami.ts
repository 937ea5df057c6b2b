/**
 * The `whoami` demo tool: who the bearer token says the caller is (subject,
 * client, scopes) and which MCP session it is using. Also `localTools`, the
 * tool list of local mode.
 */
import { Effect, Layer } from "effect"
import { TOOLS_SCOPE } from "../../../server/config.ts"
import { type McpTool, McpTools } from "../tool.ts"

/** `whoami`: needs `mcp:tools`; answers as text (JSON) and as `structuredContent`. */
export const whoami: McpTool = {
  name: "whoami",
  title: "Who am I",
  description: "Tells who the caller is: the token's subject, client and scopes, and the MCP session in use.",
  inputSchema: { type: "object", properties: {}, additionalProperties: false },
  outputSchema: {
    type: "object",
    properties: {
      subject: { type: "string" },
      clientId: { type: "string" },
      scopes: { type: "array", items: { type: "string" } },
      sessionId: { type: "string" },
      protocolVersion: { type: "string" }
    },
    required: ["subject", "clientId", "scopes", "sessionId"]
  },
  requiredScopes: [TOOLS_SCOPE],
  call: ({ session, token }) =>
    Effect.sync(() => {
      const structuredContent = {
        subject: token.subject,
        clientId: token.clientId,
        scopes: [...token.scopes],
        sessionId: session.id,
        ...(session.protocolVersion === undefined ? {} : { protocolVersion: session.protocolVersion })
      }
      return { content: [{ type: "text", text: JSON.stringify(structuredContent) }], structuredContent }
    })
}

/** The tools of local mode: `whoami`. Upstream mode provides its own list. */
export const localTools: Layer.Layer<McpTools> = Layer.succeed(McpTools, [whoami])
