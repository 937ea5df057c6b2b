/**
 * The 2025 revisions (2024-11-05 to 2025-11-25): sessionful MCP over
 * Streamable HTTP with JSON responses. Sessions live in the `SessionStore`,
 * so any instance serves any session: `initialize` opens one bound to the
 * token's subject and returns its `Mcp-Session-Id`; later requests must carry
 * it. A multi-round tool (one that asks the client for input) answers with a
 * clear tool error here: that needs protocol revision 2026-07-28.
 */
import { HttpServerResponse } from "@effect/platform"
import { Effect, Option } from "effect"
import type { InsufficientScope } from "../../errors/OAuthError.ts"
import type { VerifiedAccessToken } from "../../oauth/accessTokens.ts"
import type { Session } from "../../schema/session.ts"
import { SessionStore } from "../../services/SessionStore.ts"
import type { StoreError } from "../../services/StoreError.ts"
import { jsonResponse } from "../respond.ts"
import { McpEndpointConfig } from "./config.ts"
import { McpHttpError } from "./httpError.ts"
import { failure, type RpcMessage, type RpcReply, type RpcRequest, RpcErrorCode, success } from "./jsonrpc.ts"
import { callerSession, checkProtocolVersionHeader, clientInfoOf, negotiateProtocolVersion, principalKey, protocolVersionRefusal, SESSION_ID_HEADER } from "./session.ts"
import { McpTools, type McpToolDefinition } from "./tool.ts"
import { checkToolScopes, describeTool, invokeTool, paramsObject, toolScopesRefusal } from "./toolCalls.ts"
import type { Headers } from "./era.ts"

const transportError = (status: number, message: string, code: number = RpcErrorCode.TransportError) =>
  new McpHttpError({ status, code, message })

/** The `initialize` result: the negotiated version, our capabilities (tools only) and who we are. */
const initializeResult = (protocolVersion: string) =>
  Effect.map(McpEndpointConfig, (config) => ({
    protocolVersion,
    capabilities: { tools: {} },
    serverInfo: config.serverInfo,
    ...(config.instructions === undefined ? {} : { instructions: config.instructions })
  }))

/** `initialize`: open a session for the token's subject, answered with its `Mcp-Session-Id`. */
const initialize = (request: RpcRequest, token: VerifiedAccessToken) =>
  Effect.gen(function*() {
    const params = paramsObject(request.params)
    const requested = params?.["protocolVersion"]
    if (typeof requested !== "string") {
      const reply = failure(request.id, RpcErrorCode.InvalidParams, "Invalid params: protocolVersion must be a string")
      return jsonResponse(reply, { noStore: true })
    }
    const protocolVersion = negotiateProtocolVersion(requested)
    const clientInfo = clientInfoOf(params?.["clientInfo"])
    const created = yield* (yield* SessionStore).create({
      apiKey: principalKey(token.subject),
      subject: token.subject,
      initialized: false,
      protocolVersion,
      ...(clientInfo === undefined ? {} : { clientInfo })
    })
    for (const eviction of created.evicted) {
      yield* Effect.logInfo("mcp session evicted").pipe(
        Effect.annotateLogs({ reason: eviction.reason, subject: eviction.session.subject ?? "" })
      )
    }
    yield* Effect.logInfo("mcp session created").pipe(
      Effect.annotateLogs({ subject: token.subject, client_id: token.clientId, protocol_version: protocolVersion })
    )
    return jsonResponse(success(request.id, yield* initializeResult(protocolVersion)), {
      noStore: true,
      headers: { "mcp-session-id": created.session.id }
    })
  })

/** What a multi-round tool answers in a 2025 session: the model is told plainly why it cannot go on. */
const NEEDS_MODERN_CLIENT = "This tool asks the client for input (elicitation), which needs MCP protocol revision 2026-07-28; " +
  "this session speaks an earlier revision. Connect with a client that supports 2026-07-28 to use it."

/** `tools/call` in a session. */
const callTool = (
  request: RpcRequest,
  token: VerifiedAccessToken,
  session: Session,
  tools: ReadonlyArray<McpToolDefinition>
): Effect.Effect<RpcReply> => {
  const params = paramsObject(request.params)
  const name = params?.["name"]
  if (params === undefined || typeof name !== "string") {
    return Effect.succeed(failure(request.id, RpcErrorCode.InvalidParams, "Invalid params: name must be a string"))
  }
  const tool = tools.find((candidate) => candidate.name === name)
  if (tool === undefined) return Effect.succeed(failure(request.id, RpcErrorCode.InvalidParams, `Unknown tool: ${name.slice(0, 64)}`))
  const args = params["arguments"] ?? {}
  if (typeof args !== "object" || args === null || Array.isArray(args)) {
    return Effect.succeed(failure(request.id, RpcErrorCode.InvalidParams, "Invalid params: arguments must be an object"))
  }
  return Effect.map(
    invokeTool(tool, args as Readonly<Record<string, unknown>>, {
      token,
      protocolVersion: session.protocolVersion ?? "",
      sessionId: session.id,
      clientCapabilities: {},
      inputResponses: {},
      state: undefined
    }),
    (outcome) => {
      switch (outcome._tag) {
        case "ToolDefect":
          return failure(request.id, RpcErrorCode.InternalError, "Internal error")
        case "InputRequired":
          return success(request.id, { content: [{ type: "text", text: NEEDS_MODERN_CLIENT }], isError: true })
        case "Complete":
          return success(request.id, outcome.result)
      }
    }
  )
}

/** Answer one request of an established session. */
const dispatch = (request: RpcRequest, token: VerifiedAccessToken, session: Session, tools: ReadonlyArray<McpToolDefinition>): Effect.Effect<RpcReply> => {
  switch (request.method) {
    case "ping":
      return Effect.succeed(success(request.id, {}))
    case "tools/list":
      return Effect.succeed(success(request.id, { tools: tools.map(describeTool) }))
    case "tools/call":
      return callTool(request, token, session, tools)
    case "initialize":
      return Effect.succeed(failure(request.id, RpcErrorCode.InvalidRequest, "Invalid Request: the session is already initialized"))
    default:
      return Effect.succeed(failure(request.id, RpcErrorCode.MethodNotFound, "Method not found"))
  }
}

/** The services a 2025 request needs. */
export type LegacyServices = SessionStore | McpTools | McpEndpointConfig

/**
 * A POST of the 2025 era: one message or a batch. Requests are answered with
 * `application/json` (a batch with an array); notifications and responses
 * alone with 202 and no body.
 */
export const legacyPost = (
  headers: Headers,
  batch: boolean,
  messages: ReadonlyArray<RpcMessage>,
  token: VerifiedAccessToken
): Effect.Effect<HttpServerResponse.HttpServerResponse, McpHttpError | InsufficientScope | StoreError, LegacyServices> => {
  const lone = messages[0]
  return !batch && messages.length === 1 && lone?._tag === "Request" && lone.method !== "initialize"
    ? answerSessionRequest(headers, lone, token)
    : answerMessages(headers, batch, messages, token)
}

/**
 * One request in an established session (every 2025 tool call): the same
 * checks and answer as `answerMessages` gives a lone request, as chained
 * steps rather than a generator.
 */
const answerSessionRequest = (
  headers: Headers,
  request: RpcRequest,
  token: VerifiedAccessToken
): Effect.Effect<HttpServerResponse.HttpServerResponse, McpHttpError | InsufficientScope | StoreError, LegacyServices> => {
  const refused = protocolVersionRefusal(headers)
  if (refused !== undefined) return Effect.fail(refused)
  return Effect.flatMap(callerSession(headers, token), (session) =>
    Effect.flatMap(McpTools, (tools) => {
      const lacking = toolScopesRefusal([request], token, tools)
      if (lacking !== undefined) return Effect.fail(lacking)
      return Effect.map(dispatch(request, token, session, tools), (reply) => jsonResponse(reply, { noStore: true }))
    }))
}

/** Any other POST: `initialize`, a batch, notifications and responses. */
const answerMessages = (
  headers: Headers,
  batch: boolean,
  messages: ReadonlyArray<RpcMessage>,
  token: VerifiedAccessToken
): Effect.Effect<HttpServerResponse.HttpServerResponse, McpHttpError | InsufficientScope | StoreError, LegacyServices> =>
  Effect.gen(function*() {
    yield* checkProtocolVersionHeader(headers)
    const init = messages.find((m): m is RpcRequest => m._tag === "Request" && m.method === "initialize")
    if (init !== undefined) {
      if (batch) return yield* transportError(400, "Invalid Request: initialize must not be part of a batch", RpcErrorCode.InvalidRequest)
      if (headers[SESSION_ID_HEADER] !== undefined) {
        return yield* transportError(400, "Invalid Request: initialize opens a new session; send it without Mcp-Session-Id", RpcErrorCode.InvalidRequest)
      }
      return yield* initialize(init, token)
    }

    const session = yield* callerSession(headers, token)
    const tools = yield* McpTools
    yield* checkToolScopes(messages.filter((m): m is RpcRequest => m._tag === "Request"), token, tools)

    const replies: Array<RpcReply> = []
    for (const message of messages) {
      switch (message._tag) {
        case "Request":
          replies.push(yield* dispatch(message, token, session, tools))
          break
        case "Notification":
          if (message.method === "notifications/initialized" && !session.initialized) {
            const updated = yield* (yield* SessionStore).update(session.id, { initialized: true })
            if (Option.isNone(updated)) return yield* transportError(404, "Session not found", RpcErrorCode.SessionNotFound)
          }
          break
        case "Invalid":
          replies.push(failure(message.id, RpcErrorCode.InvalidRequest, `Invalid Request: ${message.reason}`))
          break
        case "Response":
          break
      }
    }
    if (replies.length === 0) return HttpServerResponse.empty({ status: 202 })
    return jsonResponse(batch ? replies : replies[0], { noStore: true })
  })

/** `GET /mcp` in the 2025 era: this server offers no server-initiated stream, so 405. */
export const legacyGet: Effect.Effect<never, McpHttpError> = Effect.fail(
  new McpHttpError({
    status: 405,
    code: RpcErrorCode.TransportError,
    message: "Method Not Allowed: this server offers no server-initiated stream",
    headers: { allow: "POST, DELETE" }
  })
)

/** `DELETE /mcp`: end the caller's session; 204, or 404 when it has none by that id. */
export const legacyDelete = (headers: Headers, token: VerifiedAccessToken) =>
  Effect.gen(function*() {
    yield* checkProtocolVersionHeader(headers)
    const session = yield* callerSession(headers, token)
    yield* (yield* SessionStore).delete(session.id)
    yield* Effect.logInfo("mcp session ended").pipe(Effect.annotateLogs({ subject: token.subject, client_id: token.clientId }))
    return HttpServerResponse.empty({ status: 204 })
  })
