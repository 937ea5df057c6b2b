/**
 * Which protocol era a POST to `/mcp` speaks, decided from its body first
 * (the `_meta` envelope's claim) and its headers second, as the MCP SDK's
 * `isLegacyRequest` decides it, so that one URL serves 2025 sessions and
 * 2026-07-28 stateless requests alike. Also the header rules of the
 * stateless era (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` repeat the
 * body). Pure.
 */
import { Predicate } from "effect"
import { type Envelope, hasClaim, isModernVersion, missingEnvelope, MODERN_PROTOCOL_VERSIONS, readEnvelope, unsupportedVersion } from "./envelope.ts"
import { McpHttpError } from "./httpError.ts"
import { classify, RpcErrorCode, type RpcId, type RpcNotification, type RpcRequest } from "./jsonrpc.ts"

/** The header naming the protocol version (both eras). */
export const PROTOCOL_VERSION_HEADER = "mcp-protocol-version"
/** 2026-07-28: the header repeating the JSON-RPC method. */
export const METHOD_HEADER = "mcp-method"
/** 2026-07-28: the header repeating the target a method names (`params.name`, `params.uri`). */
export const NAME_HEADER = "mcp-name"

/** The request headers, lower-case names. */
export type Headers = Readonly<Record<string, string | undefined>>

/** A header's value, trimmed of spaces and tabs; `undefined` when absent. */
export const headerValue = (headers: Headers, name: string): string | undefined => {
  const value = headers[name]
  return value === undefined ? undefined : value.replace(/^[ \t]+|[ \t]+$/g, "")
}

/** What a POST is, era-wise. */
export type EraDecision =
  | { readonly _tag: "Legacy" }
  | { readonly _tag: "Modern"; readonly message: ModernMessage }
  | { readonly _tag: "Reject"; readonly error: McpHttpError }

/** A message of the stateless era, its envelope validated (notifications without a claim have none). */
export type ModernMessage =
  | { readonly _tag: "Request"; readonly request: RpcRequest; readonly envelope: Envelope }
  | { readonly _tag: "Notification"; readonly notification: RpcNotification; readonly envelope: Envelope | undefined }

const badRequest = (message: string, id?: RpcId): McpHttpError =>
  new McpHttpError({ status: 400, code: RpcErrorCode.InvalidRequest, message, ...(id === undefined ? {} : { id }) })

/** Headers and body disagree (or a required header is absent): `-32020`, HTTP 400. */
export const headerMismatch = (what: string, header: string | undefined, body: string, id?: RpcId): McpHttpError =>
  new McpHttpError({
    status: 400,
    code: RpcErrorCode.HeaderMismatch,
    message: header === undefined
      ? `Bad Request: the request headers and body disagree: ${what} but the required header is absent`
      : `Bad Request: the request headers and body disagree: ${what} but the header names ${header}`,
    data: { mismatch: { header: header ?? "(missing)", body } },
    ...(id === undefined ? {} : { id })
  })

/** Cross-check a claiming message's version and method against its headers (when present). */
const crossCheck = (message: RpcRequest | RpcNotification, envelope: Envelope, headers: Headers): McpHttpError | undefined => {
  const id = message._tag === "Request" ? message.id : undefined
  const version = headerValue(headers, PROTOCOL_VERSION_HEADER)
  if (version !== undefined && version !== envelope.protocolVersion) {
    return headerMismatch(`the body envelope names protocol version ${envelope.protocolVersion}`, version, envelope.protocolVersion, id)
  }
  const method = headerValue(headers, METHOD_HEADER)
  if (method !== undefined && method !== message.method) {
    return headerMismatch(`the body names method ${message.method}`, method, message.method, id)
  }
  return undefined
}

/** Decide the era of a parsed POST body (see the table in the module doc of the research note). */
export const classifyPost = (body: unknown, headers: Headers): EraDecision => {
  const headerVersion = headerValue(headers, PROTOCOL_VERSION_HEADER)
  const modernHeader = headerVersion !== undefined && isModernVersion(headerVersion)

  if (Array.isArray(body)) {
    if (body.length === 0) return { _tag: "Reject", error: badRequest("Bad Request: empty JSON-RPC batch") }
    if (body.some((element) => Predicate.isRecord(element) && hasClaim(element["params"]))) {
      return {
        _tag: "Reject",
        error: badRequest("Bad Request: JSON-RPC batches may not contain requests for protocol revision 2026-07-28 or later")
      }
    }
    // A 2025 batch: its invalid members are answered one by one (JSON-RPC 2.0 §6).
    return { _tag: "Legacy" }
  }

  const message = classify(body)
  switch (message._tag) {
    case "Response":
      return { _tag: "Legacy" }
    case "Invalid":
      return modernHeader
        ? { _tag: "Reject", error: badRequest("Bad Request: the request body is not a valid JSON-RPC message", message.id ?? undefined) }
        : { _tag: "Legacy" }
    case "Request":
    case "Notification": {
      const id = message._tag === "Request" ? message.id : undefined
      if (!hasClaim(message.params)) {
        if (!modernHeader) return { _tag: "Legacy" }
        if (message._tag === "Request") return { _tag: "Reject", error: missingEnvelope(id) }
        const method = headerValue(headers, METHOD_HEADER)
        if (method !== undefined && method !== message.method) {
          return { _tag: "Reject", error: headerMismatch(`the body names method ${message.method}`, method, message.method) }
        }
        return { _tag: "Modern", message: { _tag: "Notification", notification: message, envelope: undefined } }
      }
      const envelope = readEnvelope(message.params, id)
      if (envelope instanceof McpHttpError) {
        // An `initialize` with a malformed claim is still a 2025 handshake, unless the header says otherwise.
        if (message._tag === "Request" && message.method === "initialize" && !modernHeader) return { _tag: "Legacy" }
        return { _tag: "Reject", error: envelope }
      }
      if (message._tag === "Request" && message.method === "initialize" && !isModernVersion(envelope.protocolVersion)) {
        return modernHeader
          ? { _tag: "Reject", error: headerMismatch(`the body envelope names protocol version ${envelope.protocolVersion}`, headerVersion, envelope.protocolVersion, id) }
          : { _tag: "Legacy" }
      }
      const mismatch = crossCheck(message, envelope, headers)
      if (mismatch !== undefined) return { _tag: "Reject", error: mismatch }
      return {
        _tag: "Modern",
        message: message._tag === "Request"
          ? { _tag: "Request", request: message, envelope }
          : { _tag: "Notification", notification: message, envelope }
      }
    }
  }
}

/** The `params` field `Mcp-Name` must repeat, per method. */
const NAME_FIELDS: Readonly<Record<string, string>> = {
  "tools/call": "name",
  "prompts/get": "name",
  "resources/read": "uri"
}

const SENTINEL = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/

/**
 * A header value as the client meant it: plain, or `=?base64?<b64>?=` for a
 * value that is not plain visible ASCII; `undefined` for a broken sentinel.
 */
export const decodeHeaderText = (value: string): string | undefined => {
  if (!value.startsWith("=?")) return value
  const match = SENTINEL.exec(value)
  if (match === null) return undefined
  const bytes = Uint8Array.from(atob(match[1] ?? ""), (c) => c.charCodeAt(0))
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes)
  } catch {
    return undefined
  }
}

/**
 * The stateless era's required headers, for a request whose version is
 * served: `MCP-Protocol-Version`, `Mcp-Method`, and `Mcp-Name` where the
 * method names a target. `-32020` (HTTP 400) for the first one absent or
 * different from the body.
 */
export const checkRequiredHeaders = (request: RpcRequest, envelope: Envelope, headers: Headers): McpHttpError | undefined => {
  if (!MODERN_PROTOCOL_VERSIONS.includes(envelope.protocolVersion)) return unsupportedVersion(envelope.protocolVersion, request.id)
  if (headerValue(headers, PROTOCOL_VERSION_HEADER) === undefined) {
    return headerMismatch(`the body envelope names protocol version ${envelope.protocolVersion}`, undefined, envelope.protocolVersion, request.id)
  }
  if (headerValue(headers, METHOD_HEADER) === undefined) {
    return headerMismatch(`the body names method ${request.method}`, undefined, request.method, request.id)
  }
  const field = NAME_FIELDS[request.method]
  const target = field === undefined || !Predicate.isRecord(request.params) ? undefined : request.params[field]
  if (typeof target !== "string") return undefined
  const raw = headerValue(headers, NAME_HEADER)
  const what = `the body carries params.${field}=${JSON.stringify(target)}`
  if (raw === undefined) return headerMismatch(what, undefined, target, request.id)
  const named = decodeHeaderText(raw)
  if (named === undefined) {
    return new McpHttpError({
      status: 400,
      code: RpcErrorCode.HeaderMismatch,
      message: "Bad Request: the request headers and body disagree: the Mcp-Name header carries an invalid Base64 sentinel value",
      data: { mismatch: { header: raw, body: target } },
      id: request.id
    })
  }
  return named === target ? undefined : headerMismatch(what, JSON.stringify(named), target, request.id)
}
