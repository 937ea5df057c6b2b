/**
 * The methods of protocol revision 2026-07-28 (stateless): `server/discover`,
 * `tools/list`, `tools/call` with multi-round input (`input_required` results
 * and their sealed `requestState`). Every result carries `resultType` and the
 * server's identity in `_meta`; list results carry their caching fields. No
 * session, no `initialize`, no `ping`: methods this server does not serve
 * answer `-32601` with HTTP 404.
 */
import { Effect, Option, Predicate } from "effect"
import type { VerifiedAccessToken } from "../../oauth/accessTokens.ts"
import type { Crypto } from "../../services/Crypto.ts"
import { McpEventBus } from "../../services/McpEventBus.ts"
import type { StoreError } from "../../services/StoreError.ts"
import { McpEndpointConfig } from "./config.ts"
import { type ClientCapabilities, type Envelope, MODERN_PROTOCOL_VERSIONS, SERVER_INFO_META, withoutEnvelope } from "./envelope.ts"
import { failure, RpcErrorCode, type RpcReply, type RpcRequest, success } from "./jsonrpc.ts"
import { openRequestState, sealRequestState } from "./requestState.ts"
import type { InputRequest, McpToolDefinition, ToolOutcome } from "./tool.ts"
import { McpTools } from "./tool.ts"
import { describeTool, invokeTool } from "./toolCalls.ts"

/** A reply and the HTTP status it goes with. */
export interface ModernReply {
  readonly status: number
  readonly reply: RpcReply
}

/** How long a client may serve a list from its cache: never (tool lists depend on the caller). */
const NO_CACHE = { ttlMs: 0, cacheScope: "private" } as const

const ok = (reply: RpcReply): ModernReply => ({ status: 200, reply })

/** The capability an embedded input request needs the client to have declared on this request. */
const capabilityMissing = (request: InputRequest, capabilities: ClientCapabilities): Record<string, unknown> | undefined => {
  switch (request.method) {
    case "elicitation/create": {
      const mode = request.params?.["mode"] === "url" ? "url" : "form"
      const elicitation = capabilities.elicitation
      if (elicitation === undefined) return { elicitation: { [mode]: {} } }
      // A bare `elicitation: {}` declares form mode.
      const declared = Object.keys(elicitation).length === 0 ? mode === "form" : elicitation[mode] !== undefined
      return declared ? undefined : { elicitation: { [mode]: {} } }
    }
    case "sampling/createMessage": {
      if (capabilities.sampling === undefined) return { sampling: {} }
      const usesTools = request.params?.["tools"] !== undefined || request.params?.["toolChoice"] !== undefined
      return usesTools && capabilities.sampling["tools"] === undefined ? { sampling: { tools: {} } } : undefined
    }
    case "roots/list":
      return capabilities.roots === undefined ? { roots: {} } : undefined
  }
}

/** The stateless era's answer to a tool's outcome: a complete result, or an `input_required` one with sealed state. */
const outcomeReply = (
  request: RpcRequest,
  tool: McpToolDefinition,
  outcome: ToolOutcome,
  envelope: Envelope,
  token: VerifiedAccessToken
): Effect.Effect<ModernReply, StoreError, McpEndpointConfig | Crypto> =>
  outcome._tag === "Complete"
    // The common case in one step: a complete result.
    ? Effect.map(McpEndpointConfig, (config) =>
      ok(success(request.id, { ...outcome.result, resultType: "complete", _meta: { [SERVER_INFO_META]: config.serverInfo } })))
    : inputRequiredReply(request, tool, outcome, envelope, token)

/** An `input_required` result: the inputs the client must provide (refused when it lacks their capability), and the sealed state. */
const inputRequiredReply = (
  request: RpcRequest,
  tool: McpToolDefinition,
  outcome: Extract<ToolOutcome, { readonly _tag: "InputRequired" }>,
  envelope: Envelope,
  token: VerifiedAccessToken
): Effect.Effect<ModernReply, StoreError, McpEndpointConfig | Crypto> =>
  Effect.gen(function*() {
    const config = yield* McpEndpointConfig
    const meta = { [SERVER_INFO_META]: config.serverInfo }
    for (const [key, input] of Object.entries(outcome.inputRequests)) {
      const required = capabilityMissing(input, envelope.clientCapabilities)
      if (required !== undefined) {
        return {
          status: 400,
          reply: failure(
            request.id,
            RpcErrorCode.MissingCapability,
            `Cannot request input '${key}' (${input.method}): the request's client capabilities do not declare the required capability`,
            { requiredCapabilities: required }
          )
        }
      }
    }
    const requestState = yield* sealRequestState(
      { subject: token.subject, clientId: token.clientId, tool: tool.name },
      outcome.state,
      config.requestStateTtl
    )
    return ok(success(request.id, {
      resultType: "input_required",
      ...(Object.keys(outcome.inputRequests).length === 0 ? {} : { inputRequests: outcome.inputRequests }),
      requestState,
      _meta: meta
    }))
  })

const invalidState = (request: RpcRequest): ModernReply =>
  ok(failure(request.id, RpcErrorCode.InvalidParams, "Invalid or expired requestState", { reason: "invalid_request_state" }))

/** One round of `tool` with its checked arguments, the client's answers and the verified state: the reply. */
const runTool = (
  request: RpcRequest,
  envelope: Envelope,
  token: VerifiedAccessToken,
  tool: McpToolDefinition,
  args: Readonly<Record<string, unknown>>,
  responses: Readonly<Record<string, unknown>>,
  state: unknown
) =>
  Effect.flatMap(
    invokeTool(tool, args, {
      token,
      protocolVersion: envelope.protocolVersion,
      clientCapabilities: envelope.clientCapabilities,
      inputResponses: responses,
      state
    }),
    (outcome) =>
      outcome._tag === "ToolDefect"
        ? Effect.succeed(ok(failure(request.id, RpcErrorCode.InternalError, "Internal error")))
        : outcomeReply(request, tool, outcome, envelope, token)
  )

/**
 * `tools/call`: the named tool, its arguments, and on a later round the
 * client's answers and the verified state. Chained steps, not a generator:
 * every 2026-07-28 tool call runs this.
 */
const callTool = (
  request: RpcRequest,
  envelope: Envelope,
  token: VerifiedAccessToken
): Effect.Effect<ModernReply, StoreError, McpTools | McpEndpointConfig | Crypto> => {
  const params = withoutEnvelope(request.params)
  const name = params["name"]
  if (typeof name !== "string") {
    return Effect.succeed(ok(failure(request.id, RpcErrorCode.InvalidParams, "Invalid tools/call request: name must be a string")))
  }
  const args = params["arguments"] ?? {}
  const responses = params["inputResponses"] ?? {}
  return Effect.flatMap(McpTools, (tools) => {
    const tool = tools.find((candidate) => candidate.name === name)
    if (tool === undefined) return Effect.succeed(ok(failure(request.id, RpcErrorCode.InvalidParams, `Tool ${name.slice(0, 64)} not found`)))
    if (!Predicate.isRecord(args) || Array.isArray(args)) {
      return Effect.succeed(ok(failure(request.id, RpcErrorCode.InvalidParams, "Invalid tools/call request: arguments must be an object")))
    }
    if (!Predicate.isRecord(responses) || Array.isArray(responses)) {
      return Effect.succeed(ok(failure(request.id, RpcErrorCode.InvalidParams, "Invalid tools/call request: inputResponses must be an object")))
    }
    if (!("requestState" in params)) return runTool(request, envelope, token, tool, args, responses, undefined)
    return Effect.flatMap(
      Effect.either(openRequestState({ subject: token.subject, clientId: token.clientId, tool: name }, params["requestState"])),
      (opened) =>
        opened._tag === "Left"
          ? Effect.as(Effect.logInfo("requestState refused").pipe(Effect.annotateLogs({ tool: name, reason: opened.left.reason })), invalidState(request))
          : runTool(request, envelope, token, tool, args, responses, opened.right)
    )
  })
}

/** `server/discover`: the versions, capabilities and identity of this server (tool-list changes when it can stream them). */
const discover = (request: RpcRequest) =>
  Effect.map(Effect.all([McpEndpointConfig, Effect.serviceOption(McpEventBus)]), ([config, bus]) =>
    ok(success(request.id, {
      supportedVersions: MODERN_PROTOCOL_VERSIONS,
      capabilities: { tools: Option.isSome(bus) ? { listChanged: true } : {} },
      ...(config.instructions === undefined ? {} : { instructions: config.instructions }),
      resultType: "complete",
      ...NO_CACHE,
      _meta: { [SERVER_INFO_META]: config.serverInfo }
    })))

/** `tools/list`: every tool, in one page. */
const listTools = (request: RpcRequest) =>
  Effect.map(Effect.all([McpTools, McpEndpointConfig]), ([tools, config]) =>
    ok(success(request.id, {
      tools: tools.map(describeTool),
      resultType: "complete",
      ...NO_CACHE,
      _meta: { [SERVER_INFO_META]: config.serverInfo }
    })))

/** Answer one request of the stateless era (its envelope and headers already checked, its token verified). */
export const answerModern = (
  request: RpcRequest,
  envelope: Envelope,
  token: VerifiedAccessToken
): Effect.Effect<ModernReply, StoreError, McpTools | McpEndpointConfig | Crypto> => {
  switch (request.method) {
    case "server/discover":
      return discover(request)
    case "tools/list":
      return listTools(request)
    case "tools/call":
      return callTool(request, envelope, token)
    default:
      return Effect.succeed({ status: 404, reply: failure(request.id, RpcErrorCode.MethodNotFound, "Method not found") })
  }
}
