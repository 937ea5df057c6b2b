/**
 * `/mcp`: the MCP endpoint, serving both protocol eras at one URL. Every
 * request first passes the DNS-rebinding checks (`Host`, `Origin`) and the
 * access token check (Bearer, or DPoP with a proof; 401 with `Bearer` and
 * `DPoP` challenges naming the resource metadata and the scopes the endpoint
 * needs); then its body decides the era: a
 * 2026-07-28 request (its `_meta` envelope) is answered statelessly
 * (`modern.ts`), anything else by the 2025 session protocol (`legacy.ts`).
 * Transport refusals answer with a JSON-RPC error body; OAuth failures with
 * the rendered OAuth error and its challenge; a store outage with 503.
 */
import { HttpServerResponse } from "@effect/platform"
import { Context, Effect, Option } from "effect"
import type { InsufficientScope } from "../../errors/OAuthError.ts"
import type { VerifiedAccessToken } from "../../oauth/accessTokens.ts"
import type { OAuthConfig } from "../../oauth/config.ts"
import type { Crypto } from "../../services/Crypto.ts"
import type { Jwks } from "../../services/Jwks.ts"
import type { ReplayCache } from "../../services/ReplayCache.ts"
import { McpEventBus } from "../../services/McpEventBus.ts"
import { McpEventStore } from "../../services/McpEventStore.ts"
import type { StoreError } from "../../services/StoreError.ts"
import type { TokenStore } from "../../services/TokenStore.ts"
import { type BodyTooLarge, mediaType, type RequestHeaders, type UnreadableBody } from "../body.ts"
import type { ResourceRequest } from "../dpop.ts"
import { jsonResponse } from "../respond.ts"
import { protectedResource } from "./bearer.ts"
import { McpEndpointConfig } from "./config.ts"
import { type Envelope, isModernVersion } from "./envelope.ts"
import { checkRequiredHeaders, classifyPost, headerValue, PROTOCOL_VERSION_HEADER } from "./era.ts"
import { McpHttpError, refusal } from "./httpError.ts"
import { classify, type RpcMessage, type RpcRequest, RpcErrorCode } from "./jsonrpc.ts"
import { legacyDelete, legacyGet, legacyPost, type LegacyServices } from "./legacy.ts"
import { listen, resume } from "./listen.ts"
import { answerModern } from "./modern.ts"
import { McpTools } from "./tool.ts"
import { toolScopesRefusal } from "./toolCalls.ts"

/** What the endpoint needs. */
export type McpEndpointServices = LegacyServices | McpEndpointConfig | McpTools | OAuthConfig | Jwks | TokenStore | ReplayCache | Crypto

const transportError = (status: number, message: string, code: number = RpcErrorCode.TransportError) =>
  new McpHttpError({ status, code, message })

/**
 * Whether an `Accept` header admits `application/json` (absent: anything
 * is). `text/event-stream` is not required: answers are JSON unless a
 * stream was asked for.
 */
export const acceptsJson = (accept: string | undefined): boolean =>
  accept === undefined || accept.trim() === "" || accept.split(",").some((range) => {
    const [type = "", ...params] = range.split(";").map((part) => part.trim().toLowerCase())
    const q = params.find((param) => param.startsWith("q="))
    if (q !== undefined && Number(q.slice(2)) === 0) return false
    return type === "application/json" || type === "application/*" || type === "*/*"
  })

/**
 * A request to `/mcp` as the endpoint reads it: its method and headers (what
 * the token check and DPoP's `htm` need), and its body as text (bounded by
 * whoever serves it: the platform's body limit, or the Node fast path's).
 */
export interface McpRequest extends ResourceRequest {
  readonly text: Effect.Effect<string, BodyTooLarge | UnreadableBody>
}

/** The `Host` header's host and port as a URL would print them (lower-case). */
const hostOf = (request: RequestHeaders): string | undefined => request.headers["host"]?.trim().toLowerCase()

/**
 * Serve one MCP request: a `Host` we do not answer to or a foreign `Origin`
 * is refused with 403 (DNS rebinding), then the bearer token is verified,
 * then `handle` runs; its transport refusals become JSON-RPC error responses.
 */
const serve = <R>(
  request: ResourceRequest,
  handle: (token: VerifiedAccessToken) => Effect.Effect<HttpServerResponse.HttpServerResponse, McpHttpError | InsufficientScope | StoreError, R>
) =>
  Effect.flatMap(McpEndpointConfig, (config) => {
    const host = hostOf(request)
    if (host !== undefined && !config.allowedHosts.has(host)) {
      return Effect.succeed(refusal(transportError(403, "Forbidden: host not allowed")))
    }
    const origin = request.headers["origin"]
    if (origin !== undefined && !config.allowedOrigins.has(origin.toLowerCase())) {
      return Effect.succeed(refusal(transportError(403, "Forbidden: origin not allowed")))
    }
    return protectedResource(
      request,
      (token) => Effect.catchTag(handle(token), "McpHttpError", (error) => Effect.succeed(refusal(error))),
      { challengeScopes: config.scopes }
    )
  })

/** Why a body could not be had, as the transport refusal (built once, not per request). */
const unreadBody = {
  BodyTooLarge: (error: BodyTooLarge) => Effect.fail(transportError(413, `Payload Too Large: the body exceeds ${error.limit} bytes`)),
  UnreadableBody: () => Effect.fail(transportError(400, "Bad Request: the body could not be read"))
}

/** The body as JSON; a body that does not parse is the JSON-RPC parse error (HTTP 400). */
const readBody = (request: McpRequest): Effect.Effect<unknown, McpHttpError> =>
  Effect.flatMap(Effect.catchTags(request.text, unreadBody), (text) => {
    try {
      return Effect.succeed(JSON.parse(text) as unknown)
    } catch {
      return Effect.fail(transportError(400, "Parse error", RpcErrorCode.ParseError))
    }
  })

/** The messages of a 2025-era body (one, or a batch), refused when a lone message is not JSON-RPC. */
const legacyMessages = (body: unknown): { readonly batch: boolean; readonly messages: ReadonlyArray<RpcMessage> } | McpHttpError => {
  if (Array.isArray(body)) return { batch: true, messages: body.map(classify) }
  const message = classify(body)
  if (message._tag === "Invalid") {
    return new McpHttpError({
      status: 400,
      code: RpcErrorCode.InvalidRequest,
      message: `Invalid Request: ${message.reason}`,
      ...(message.id === null ? {} : { id: message.id })
    })
  }
  return { batch: false, messages: [message] }
}

/** `POST /mcp`: one message (or, in the 2025 era, a batch), answered in the era its body speaks. */
export const mcpPost = (request: McpRequest) =>
  serve(request, (token) =>
    mediaType(request) !== "application/json"
      ? Effect.fail(transportError(415, "Unsupported Media Type: the body must be application/json"))
      : Effect.flatMap(readBody(request), (body) => answerPost(request, body, token)))

/** A parsed `POST /mcp` body, answered in its era (chained steps, not a generator: every tool call runs this). */
const answerPost = (
  request: McpRequest,
  body: unknown,
  token: VerifiedAccessToken
): Effect.Effect<HttpServerResponse.HttpServerResponse, McpHttpError | InsufficientScope | StoreError, McpEndpointServices> => {
  const era = classifyPost(body, request.headers)
  switch (era._tag) {
    case "Reject":
      return Effect.fail(era.error)
    case "Legacy": {
      if (!acceptsJson(request.headers["accept"])) {
        return Effect.fail(transportError(406, "Not Acceptable: the client must accept application/json"))
      }
      const parsed = legacyMessages(body)
      if (parsed instanceof McpHttpError) return Effect.fail(parsed)
      return legacyPost(request.headers, parsed.batch, parsed.messages, token)
    }
    case "Modern": {
      const message = era.message
      if (message._tag === "Notification") return Effect.succeed(HttpServerResponse.empty({ status: 202 }))
      const refused = checkRequiredHeaders(message.request, message.envelope, request.headers)
      if (refused !== undefined) return Effect.fail(refused)
      return Effect.flatMap(McpTools, (tools): Effect.Effect<HttpServerResponse.HttpServerResponse, InsufficientScope | StoreError, McpEndpointServices> => {
        const lacking = toolScopesRefusal([message.request], token, tools)
        if (lacking !== undefined) return Effect.fail(lacking)
        return message.request.method === "subscriptions/listen"
          ? listenPost(message.request, message.envelope, token)
          : answerModernPost(message.request, message.envelope, token)
      })
    }
  }
}

/** A 2026-07-28 request answered with JSON. */
const answerModernPost = (request: RpcRequest, envelope: Envelope, token: VerifiedAccessToken) =>
  Effect.map(answerModern(request, envelope, token), (answer) => jsonResponse(answer.reply, { status: answer.status, noStore: true }))

/** `subscriptions/listen`: a stream when the backend has the event bus and store; answered like any request otherwise. */
const listenPost = (request: RpcRequest, envelope: Envelope, token: VerifiedAccessToken) =>
  Effect.flatMap(streamingServices, (streaming) =>
    Option.isNone(streaming)
      ? answerModernPost(request, envelope, token)
      : Effect.map(
        listen(request, token).pipe(Effect.provide(streaming.value)),
        (answer) => answer._tag === "Stream" ? answer.response : jsonResponse(answer.reply, { noStore: true })
      ))

/**
 * The event bus and the event store, when the backend provides them (every
 * backend but Cloudflare KV): without them, `subscriptions/listen` is not
 * served and `server/discover` does not announce tool-list changes.
 */
export const streamingServices = Effect.map(
  Effect.all([Effect.serviceOption(McpEventBus), Effect.serviceOption(McpEventStore)]),
  ([bus, store]) => Option.zipWith(bus, store, (b, s) => Context.make(McpEventBus, b).pipe(Context.add(McpEventStore, s)))
)

const streamNotFound = new McpHttpError({ status: 404, code: RpcErrorCode.TransportError, message: "Not Found: no stream of yours has that event id" })

/**
 * `GET /mcp`: with a 2026-07-28 `MCP-Protocol-Version` and `Last-Event-ID`,
 * resume a listen stream (404 when it is unknown, expired or another
 * caller's); otherwise no server-initiated stream in the 2025 era (405).
 */
export const mcpGet = (request: ResourceRequest) =>
  serve(request, (token) =>
    Effect.gen(function*() {
      const version = headerValue(request.headers, PROTOCOL_VERSION_HEADER)
      const lastEventId = headerValue(request.headers, "last-event-id")
      if (version === undefined || !isModernVersion(version) || lastEventId === undefined) return yield* legacyGet
      const streaming = yield* streamingServices
      if (Option.isNone(streaming)) return yield* streamNotFound
      const resumed = yield* resume(lastEventId, token).pipe(Effect.provide(streaming.value))
      return yield* Option.match(resumed, { onNone: () => Effect.fail(streamNotFound), onSome: Effect.succeed })
    }))

/** `DELETE /mcp`: end the caller's 2025 session; 204, or 404 when it has none by that id. */
export const mcpDelete = (request: ResourceRequest) =>
  serve(request, (token) => legacyDelete(request.headers, token))
