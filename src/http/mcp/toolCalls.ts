/**
 * What both protocol eras do with tools: describe them for `tools/list`, find
 * the one a `tools/call` names, refuse a call whose scopes the token lacks
 * (before any tool runs, so it can be answered as an HTTP 403 step-up
 * challenge), and run a tool with a defect turned into an opaque internal
 * error.
 */
import { Effect, Predicate } from "effect"
import { InsufficientScope } from "../../errors/OAuthError.ts"
import { logDetail } from "../../errors/render.ts"
import type { VerifiedAccessToken } from "../../oauth/accessTokens.ts"
import { formatScope, missingScopes } from "../../oauth/scopes.ts"
import type { RpcRequest } from "./jsonrpc.ts"
import type { McpToolDefinition, ToolCall, ToolOutcome } from "./tool.ts"

/** `params` as an object: absent is empty; an array (by-position params) is not one. */
export const paramsObject = (params: unknown): Readonly<Record<string, unknown>> | undefined =>
  params === undefined ? {} : Predicate.isRecord(params) && !Array.isArray(params) ? params : undefined

/** A tool as `tools/list` describes it. */
export const describeTool = (tool: McpToolDefinition) => ({
  name: tool.name,
  ...(tool.title === undefined ? {} : { title: tool.title }),
  description: tool.description,
  inputSchema: tool.inputSchema,
  ...(tool.outputSchema === undefined ? {} : { outputSchema: tool.outputSchema }),
  ...(tool.annotations === undefined ? {} : { annotations: tool.annotations })
})

/** The tool a `tools/call` request names, when it names one we serve. */
export const toolOf = (request: RpcRequest, tools: ReadonlyArray<McpToolDefinition>): McpToolDefinition | undefined => {
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
  requests: ReadonlyArray<RpcRequest>,
  token: VerifiedAccessToken,
  tools: ReadonlyArray<McpToolDefinition>
): Effect.Effect<void, InsufficientScope> => {
  const refused = toolScopesRefusal(requests, token, tools)
  return refused === undefined ? Effect.void : Effect.fail(refused)
}

/** `checkToolScopes`'s refusal, if there is one, without an Effect step (the hot paths check it inline). */
export const toolScopesRefusal = (
  requests: ReadonlyArray<RpcRequest>,
  token: VerifiedAccessToken,
  tools: ReadonlyArray<McpToolDefinition>
): InsufficientScope | undefined => {
  const required: Array<string> = []
  const missing: Array<string> = []
  for (const request of requests) {
    if (request.method !== "tools/call") continue
    const tool = toolOf(request, tools)
    if (tool === undefined) continue
    const lacking = missingScopes(token.scopes, tool.requiredScopes)
    if (lacking.length === 0) continue
    required.push(...tool.requiredScopes)
    missing.push(...lacking)
  }
  return missing.length === 0 ? undefined : new InsufficientScope({
    description: `missing scope: ${formatScope([...new Set(missing)])}`,
    scope: [...new Set([...required, ...token.scopes])]
  })
}

/** A tool that died: logged with its detail, never shown to the client. */
export class ToolDefect {
  readonly _tag = "ToolDefect"
}

/** Run a tool; a defect is logged and becomes `ToolDefect` (answered as `-32603 Internal error`). */
export const invokeTool = (
  tool: McpToolDefinition,
  args: Readonly<Record<string, unknown>>,
  call: ToolCall
): Effect.Effect<ToolOutcome | ToolDefect> =>
  tool.call(args, call).pipe(
    Effect.catchAllDefect((defect) =>
      Effect.as(
        Effect.logError("mcp tool failed").pipe(Effect.annotateLogs({ tool: tool.name, detail: logDetail(defect) })),
        new ToolDefect()
      )
    )
  )
