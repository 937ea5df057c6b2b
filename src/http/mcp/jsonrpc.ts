/**
 * JSON-RPC 2.0 as MCP uses it: telling requests, notifications and responses
 * apart, and building the answers. Pure: no HTTP, no services.
 */
import { Data, Predicate } from "effect"

/** The JSON-RPC and MCP error codes the endpoint answers with. */
export const RpcErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** A transport-level refusal (the MCP SDK's server uses this code for them too). */
  TransportError: -32000,
  /** The `Mcp-Session-Id` names no live session of the caller. */
  SessionNotFound: -32001,
  /** 2026-07-28: the HTTP headers and the body disagree, or a required header is absent. */
  HeaderMismatch: -32020,
  /** 2026-07-28: an input request needs a client capability the request did not declare. */
  MissingCapability: -32021,
  /** 2026-07-28: the protocol version the request names is not served here. */
  UnsupportedVersion: -32022
} as const

/** A request or notification id: JSON-RPC allows strings and numbers (MCP forbids `null`). */
export type RpcId = string | number

/** A message that expects an answer. */
export interface RpcRequest {
  readonly _tag: "Request"
  readonly id: RpcId
  readonly method: string
  readonly params: unknown
}

/** A message that expects none. */
export interface RpcNotification {
  readonly _tag: "Notification"
  readonly method: string
  readonly params: unknown
}

/** A client's answer to a server request (this server sends none, so they are only acknowledged). */
export interface RpcClientResponse {
  readonly _tag: "Response"
  readonly id: RpcId
}

/** Something that is not a JSON-RPC 2.0 message; `id` when one could be read from it. */
export interface RpcInvalid {
  readonly _tag: "Invalid"
  readonly id: RpcId | null
  readonly reason: string
}

export type RpcMessage = RpcRequest | RpcNotification | RpcClientResponse | RpcInvalid

/** A JSON-RPC error object. */
export interface RpcError {
  readonly code: number
  readonly message: string
  readonly data?: unknown
}

/** What the endpoint sends back for one request. */
export type RpcReply =
  | { readonly jsonrpc: "2.0"; readonly id: RpcId; readonly result: unknown }
  | { readonly jsonrpc: "2.0"; readonly id: RpcId | null; readonly error: RpcError }

const isId = (u: unknown): u is RpcId => (typeof u === "string") || (typeof u === "number" && Number.isFinite(u))

/** Classify one decoded JSON value. */
export const classify = (value: unknown): RpcMessage => {
  if (!Predicate.isRecord(value) || Array.isArray(value)) {
    return { _tag: "Invalid", id: null, reason: "a JSON-RPC message must be an object" }
  }
  const id = isId(value["id"]) ? value["id"] : null
  if (value["jsonrpc"] !== "2.0") return { _tag: "Invalid", id, reason: "jsonrpc must be \"2.0\"" }
  const method = value["method"]
  const params = value["params"]
  if (params !== undefined && (!Predicate.isRecord(params) && !Array.isArray(params))) {
    return { _tag: "Invalid", id, reason: "params must be an object or an array" }
  }
  if (typeof method === "string") {
    if (!("id" in value)) return { _tag: "Notification", method, params }
    return id === null
      ? { _tag: "Invalid", id, reason: "id must be a string or a number" }
      : { _tag: "Request", id, method, params }
  }
  if (method === undefined && id !== null && ("result" in value || Predicate.isRecord(value["error"]))) {
    return { _tag: "Response", id }
  }
  return { _tag: "Invalid", id, reason: "not a request, notification or response" }
}

/** A successful reply. */
export const success = (id: RpcId, result: unknown): RpcReply => ({ jsonrpc: "2.0", id, result })

/** An error reply. */
export const failure = (id: RpcId | null, code: number, message: string, data?: unknown): RpcReply => ({
  jsonrpc: "2.0",
  id,
  error: data === undefined ? { code, message } : { code, message, data }
})

/** A failure carried by a method's Effect: it becomes the request's error reply. */
export class RpcFailure extends Data.TaggedError("RpcFailure")<{ readonly code: number; readonly message: string }> {}
