/**
 * The MCP methods this server answers inside a session: `ping`,
 * `tools/list`, `tools/call`; the `initialize` result; and the tool-level
 * scope check that runs before any tool does, so a missing scope can be
 * answered as an HTTP 403 step-up challenge.
 */
import { Effect, Predicate } from "effect"
import { InsufficientScope } from "../../errors/OAuthError.ts"
import { logDetail } from "../../errors/render.ts"
import type { VerifiedAccessToken } from "../../oauth/accessTokens.ts"
import { formatScope, missingScopes } from "../../oauth/scopes.ts"
import type { Session } from "../../schema/session.ts"
import { failure, type RpcMessage, type RpcReply, type RpcRequest, RpcErrorCode, success } from "./jsonrpc.ts"
import type { McpTool, ToolResult } from "./tool.ts"
import packageJson from "../../../package.json" with { type: "json" }

/** `serverInfo` of the `initialize` result. */
export const SERVER_INFO = { name: "mcp-oauth-store", version: packageJson.version } as const

/** The `initialize` result: the negotiated version, our capabilities (tools only) and who we are. */
export const initializeResult = (protocolVersion: string) => ({
  protocolVersion,
  capabilities: { tools: {} },
  serverInfo: SERVER_INFO
})

/** What a request is answered in: the caller, its session, and the tools served. */
export interface MethodContext {
  readonly token: VerifiedAccessToken
  readonly session: Session
  readonly tools: ReadonlyArray<McpTool>
}

/** `params` as an object: absent is empty; an array (by-position params) is not one. */
export const paramsObject = (params: unknown): Readonly<Record<string, unknown>> | undefined =>
  params === undefined ? {} : Predicate.isRecord(params) && !Array.isArray(params) ? params : undefined

/** A tool as `tools/list` describes it. */
const describeTool = (tool: McpTool) => ({
  name: tool.name,
  ...(tool.title === undefined ? {} : { title: tool.title }),
  description: tool.description,
  inputSchema: tool.inputSchema,
  ...(tool.outputSchema === undefined ? {} : { outputSchema: tool.outputSchema })
})

/** The tool a `tools/call` request names, when it names one we serve. */
const toolOf = (request: RpcRequest, tools: ReadonlyArray<McpTool>): McpTool | undefined => {
  const name = paramsObject(request.params)?.["name"]
  return typeof name === "string" ? tools.find((tool) => tool.name === name) : undefined
}

/**
 * Refuse the whole HTTP request when one of its `tools/call`s names a tool
 * whose scopes the token lacks: `InsufficientScope` whose `scope` is the
 * refused tools' required scopes followed by the scopes the token already
 * has, so a client that steps up with it keeps what it was granted.
 */
export const checkToolScopes = (
  messages: ReadonlyArray<RpcMessage>,
  token: VerifiedAccessToken,
  tools: ReadonlyArray<McpTool>
): Effect.Effect<void, InsufficientScope> => {
  const required: Array<string> = []
  const missing: Array<string> = []
  for (const message of messages) {
    if (message._tag !== "Request" || message.method !== "tools/call") continue
    const tool = toolOf(message, tools)
    if (tool === undefined) continue
    const lacking = missingScopes(token.scopes, tool.requiredScopes)
    if (lacking.length === 0) continue
    required.push(...tool.requiredScopes)
    missing.push(...lacking)
  }
  return missing.length === 0 ? Effect.void : Effect.fail(
    new InsufficientScope({
      description: `missing scope: ${formatScope([...new Set(missing)])}`,
      scope: [...new Set([...required, ...token.scopes])]
    })
  )
}

const toolResult = (result: ToolResult) => ({
  content: result.content,
  ...(result.structuredContent === undefined ? {} : { structuredContent: result.structuredContent }),
  ...(result.isError === undefined ? {} : { isError: result.isError })
})

/** `tools/call`: the named tool with its arguments (an object, or absent); a defect is an opaque internal error. */
const callTool = (request: RpcRequest, context: MethodContext): Effect.Effect<RpcReply> => {
  const params = paramsObject(request.params)
  const name = params?.["name"]
  if (params === undefined || typeof name !== "string") {
    return Effect.succeed(failure(request.id, RpcErrorCode.InvalidParams, "Invalid params: name must be a string"))
  }
  const tool = context.tools.find((candidate) => candidate.name === name)
  if (tool === undefined) {
    return Effect.succeed(failure(request.id, RpcErrorCode.InvalidParams, `Unknown tool: ${name.slice(0, 64)}`))
  }
  const args = params["arguments"] ?? {}
  if (!Predicate.isRecord(args) || Array.isArray(args)) {
    return Effect.succeed(failure(request.id, RpcErrorCode.InvalidParams, "Invalid params: arguments must be an object"))
  }
  return tool.call({ token: context.token, session: context.session }, args).pipe(
    Effect.map((result) => success(request.id, toolResult(result))),
    Effect.catchAllDefect((defect) =>
      Effect.as(
        Effect.logError("mcp tool failed").pipe(Effect.annotateLogs({ tool: tool.name, detail: logDetail(defect) })),
        failure(request.id, RpcErrorCode.InternalError, "Internal error")
      )
    )
  )
}

/** Answer one request of an established session. */
export const dispatch = (request: RpcRequest, context: MethodContext): Effect.Effect<RpcReply> => {
  switch (request.method) {
    case "ping":
      return Effect.succeed(success(request.id, {}))
    case "tools/list":
      return Effect.succeed(success(request.id, { tools: context.tools.map(describeTool) }))
    case "tools/call":
      return callTool(request, context)
    case "initialize":
      return Effect.succeed(failure(request.id, RpcErrorCode.InvalidRequest, "Invalid Request: the session is already initialized"))
    default:
      return Effect.succeed(failure(request.id, RpcErrorCode.MethodNotFound, "Method not found"))
  }
}
