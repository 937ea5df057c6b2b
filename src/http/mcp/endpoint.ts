/**
 * `/mcp`: the MCP Streamable HTTP endpoint, answering JSON (never a stream).
 * We own the JSON-RPC: sessions live in the `SessionStore`, so any instance
 * serves any session. Every request needs a bearer token for this resource;
 * `initialize` opens a session bound to the token's subject and returns its
 * `Mcp-Session-Id`; later requests must carry it. Transport refusals answer
 * with a JSON-RPC error body; OAuth failures with the rendered OAuth error and
 * its `WWW-Authenticate` challenge; a store outage with 503.
 */
import { type HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Option } from "effect"
import type { InsufficientScope } from "../../errors/OAuthError.ts"
import type { VerifiedAccessToken } from "../../oauth/accessTokens.ts"
import { Settings } from "../../server/config.ts"
import { SessionStore } from "../../services/SessionStore.ts"
import type { StoreError } from "../../services/StoreError.ts"
import { mediaType, readText } from "../body.ts"
import { jsonResponse } from "../respond.ts"
import { protectedResource } from "./bearer.ts"
import { classify, failure, type RpcMessage, type RpcReply, type RpcRequest, RpcErrorCode, success } from "./jsonrpc.ts"
import { checkToolScopes, dispatch, initializeResult, paramsObject } from "./methods.ts"
import {
  callerSession,
  checkProtocolVersionHeader,
  clientInfoOf,
  McpHttpError,
  negotiateProtocolVersion,
  principalKey,
  SESSION_ID_HEADER
} from "./session.ts"
import { McpTools } from "./tool.ts"

/** A transport refusal as its response. */
const refusal = (error: McpHttpError): HttpServerResponse.HttpServerResponse =>
  jsonResponse(failure(error.id ?? null, error.code, error.message), {
    status: error.status,
    noStore: true,
    ...(error.headers === undefined ? {} : { headers: error.headers })
  })

const transportError = (status: number, message: string, code: number = RpcErrorCode.TransportError) =>
  new McpHttpError({ status, code, message })

/**
 * Whether an `Accept` header admits `application/json` (absent: anything
 * is). `text/event-stream` is not required: this server never streams.
 */
export const acceptsJson = (accept: string | undefined): boolean =>
  accept === undefined || accept.trim() === "" || accept.split(",").some((range) => {
    const [type = "", ...params] = range.split(";").map((part) => part.trim().toLowerCase())
    const q = params.find((param) => param.startsWith("q="))
    if (q !== undefined && Number(q.slice(2)) === 0) return false
    return type === "application/json" || type === "application/*" || type === "*/*"
  })

/**
 * Serve one MCP request: a foreign `Origin` is refused with 403 (MCP:
 * against DNS rebinding; same-origin pages and non-browser clients send none
 * or ours), then the bearer token is verified, then `handle` runs; its
 * transport refusals become JSON-RPC error responses.
 */
const serve = <R>(
  request: HttpServerRequest.HttpServerRequest,
  handle: (token: VerifiedAccessToken) => Effect.Effect<HttpServerResponse.HttpServerResponse, McpHttpError | InsufficientScope | StoreError, R>
) =>
  Effect.flatMap(Settings, (settings) => {
    const origin = request.headers["origin"]
    if (origin !== undefined && origin !== new URL(settings.publicUrl).origin) {
      return Effect.succeed(refusal(transportError(403, "Forbidden: origin not allowed")))
    }
    return protectedResource(request, (token) =>
      Effect.catchTag(handle(token), "McpHttpError", (error) => Effect.succeed(refusal(error))))
  })

/** The body's JSON-RPC messages, and whether they came as a batch. */
const readMessages = (
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<{ readonly batch: boolean; readonly messages: ReadonlyArray<RpcMessage> }, McpHttpError> =>
  Effect.gen(function*() {
    const text = yield* readText(request).pipe(
      Effect.catchTags({
        BodyTooLarge: (error) => Effect.fail(transportError(413, `Payload Too Large: the body exceeds ${error.limit} bytes`)),
        UnreadableBody: () => Effect.fail(transportError(400, "Bad Request: the body could not be read"))
      })
    )
    const parsed = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: () => transportError(400, "Parse error", RpcErrorCode.ParseError)
    })
    if (Array.isArray(parsed)) {
      if (parsed.length === 0) return yield* transportError(400, "Invalid Request: empty batch", RpcErrorCode.InvalidRequest)
      return { batch: true, messages: parsed.map(classify) }
    }
    const message = classify(parsed)
    if (message._tag === "Invalid") {
      return yield* new McpHttpError({
        status: 400,
        code: RpcErrorCode.InvalidRequest,
        message: `Invalid Request: ${message.reason}`,
        ...(message.id === null ? {} : { id: message.id })
      })
    }
    return { batch: false, messages: [message] }
  })

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
    return jsonResponse(success(request.id, initializeResult(protocolVersion)), {
      noStore: true,
      headers: { "mcp-session-id": created.session.id }
    })
  })

/**
 * `POST /mcp`: one JSON-RPC message or a batch. Requests are answered with
 * `application/json` (a batch with an array); notifications and responses
 * alone with 202 and no body.
 */
export const mcpPost = (request: HttpServerRequest.HttpServerRequest) =>
  serve(request, (token) =>
    Effect.gen(function*() {
      if (!acceptsJson(request.headers["accept"])) {
        return yield* transportError(406, "Not Acceptable: the client must accept application/json")
      }
      if (mediaType(request) !== "application/json") {
        return yield* transportError(415, "Unsupported Media Type: the body must be application/json")
      }
      yield* checkProtocolVersionHeader(request.headers)
      const { batch, messages } = yield* readMessages(request)

      const init = messages.find((m): m is RpcRequest => m._tag === "Request" && m.method === "initialize")
      if (init !== undefined) {
        if (batch) return yield* transportError(400, "Invalid Request: initialize must not be part of a batch", RpcErrorCode.InvalidRequest)
        if (request.headers[SESSION_ID_HEADER] !== undefined) {
          return yield* transportError(400, "Invalid Request: initialize opens a new session; send it without Mcp-Session-Id", RpcErrorCode.InvalidRequest)
        }
        return yield* initialize(init, token)
      }

      const session = yield* callerSession(request.headers, token)
      const tools = yield* McpTools
      yield* checkToolScopes(messages, token, tools)

      const replies: Array<RpcReply> = []
      for (const message of messages) {
        switch (message._tag) {
          case "Request":
            replies.push(yield* dispatch(message, { token, session, tools }))
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
    }))

/** `GET /mcp`: this server offers no server-initiated stream, so 405 (after authentication). */
export const mcpGet = (request: HttpServerRequest.HttpServerRequest) =>
  serve(request, () =>
    Effect.fail(
      new McpHttpError({
        status: 405,
        code: RpcErrorCode.TransportError,
        message: "Method Not Allowed: this server offers no server-initiated stream",
        headers: { allow: "POST, DELETE" }
      })
    ))

/** `DELETE /mcp`: end the caller's session; 204, or 404 when it has none by that id. */
export const mcpDelete = (request: HttpServerRequest.HttpServerRequest) =>
  serve(request, (token) =>
    Effect.gen(function*() {
      yield* checkProtocolVersionHeader(request.headers)
      const session = yield* callerSession(request.headers, token)
      yield* (yield* SessionStore).delete(session.id)
      yield* Effect.logInfo("mcp session ended").pipe(Effect.annotateLogs({ subject: token.subject, client_id: token.clientId }))
      return HttpServerResponse.empty({ status: 204 })
    }))
