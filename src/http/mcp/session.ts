/**
 * MCP sessions over HTTP: the headers that carry them, protocol-version
 * negotiation, and finding the caller's session in the `SessionStore` (so any
 * instance serves any session). A session is bound to the subject of the
 * token that initialized it; another subject's session is reported as not
 * found, so its existence is not revealed.
 */
import { Effect, Option, Predicate } from "effect"
import type { VerifiedAccessToken } from "../../oauth/accessTokens.ts"
import type { ClientInfo, Session } from "../../schema/session.ts"
import { SessionStore } from "../../services/SessionStore.ts"
import type { StoreError } from "../../services/StoreError.ts"
import { McpHttpError } from "./httpError.ts"
import { RpcErrorCode } from "./jsonrpc.ts"

/** The header that carries the session id (lower-case, as requests' headers are). */
export const SESSION_ID_HEADER = "mcp-session-id"
/** The header that carries the negotiated protocol version on every request after `initialize`. */
export const PROTOCOL_VERSION_HEADER = "mcp-protocol-version"

/** The MCP protocol versions this server speaks, newest first. */
export const SUPPORTED_PROTOCOL_VERSIONS: ReadonlyArray<string> = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]
/** The newest protocol version: the answer to a client asking for one we do not speak. */
export const LATEST_PROTOCOL_VERSION = "2025-11-25"

/** The client's version when we speak it, else our newest (the client then decides whether to go on). */
export const negotiateProtocolVersion = (requested: string): string =>
  SUPPORTED_PROTOCOL_VERSIONS.includes(requested) ? requested : LATEST_PROTOCOL_VERSION

/** The `SessionStore` key of a principal: its sessions count against one per-key limit (5). */
export const principalKey = (subject: string): string => `sub:${subject}`

/** The header is missing: 400 (MCP Streamable HTTP, "Session Management"). */
export const sessionRequired = (): McpHttpError =>
  new McpHttpError({ status: 400, code: RpcErrorCode.TransportError, message: "Bad Request: Mcp-Session-Id header is required" })

/** No live session of the caller has this id: 404, so the client starts a new one. */
export const sessionNotFound = (): McpHttpError =>
  new McpHttpError({ status: 404, code: RpcErrorCode.SessionNotFound, message: "Session not found" })

/** Session ids are visible ASCII (MCP); ours are far shorter than this bound. */
const SESSION_ID = /^[\x21-\x7e]{1,256}$/

/**
 * The session the request names, when it is live and belongs to the token's
 * subject. Reading it refreshes its idle TTL (throttled by the store).
 */
export const callerSession = (
  headers: Readonly<Record<string, string | undefined>>,
  token: VerifiedAccessToken
): Effect.Effect<Session, McpHttpError | StoreError, SessionStore> => {
  // Chained steps, not a generator: every 2025 request runs this.
  const id = headers[SESSION_ID_HEADER]
  if (id === undefined || id === "") return sessionRequired()
  if (!SESSION_ID.test(id)) return sessionNotFound()
  return Effect.flatMap(SessionStore, (store) =>
    Effect.flatMap(store.get(id), (session) =>
      Option.isNone(session) || session.value.subject !== token.subject ? sessionNotFound() : Effect.succeed(session.value)))
}

/** Why a request's `MCP-Protocol-Version` header is refused (it names a version we do not speak), if it is. */
export const protocolVersionRefusal = (headers: Readonly<Record<string, string | undefined>>): McpHttpError | undefined => {
  const version = headers[PROTOCOL_VERSION_HEADER]
  return version === undefined || SUPPORTED_PROTOCOL_VERSIONS.includes(version.trim())
    ? undefined
    : new McpHttpError({
      status: 400,
      code: RpcErrorCode.TransportError,
      message: `Bad Request: unsupported protocol version (supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(", ")})`
    })
}

/** A `MCP-Protocol-Version` header, when present, must name a version we speak: else 400. */
export const checkProtocolVersionHeader = (headers: Readonly<Record<string, string | undefined>>): Effect.Effect<void, McpHttpError> => {
  const refused = protocolVersionRefusal(headers)
  return refused === undefined ? Effect.void : Effect.fail(refused)
}

const MAX_CLIENT_INFO_LENGTH = 256

/** The `clientInfo` of an `initialize` request, kept when it has a name and a version (each cut to 256 characters). */
export const clientInfoOf = (value: unknown): ClientInfo | undefined => {
  if (!Predicate.isRecord(value)) return undefined
  const { name, version } = value
  return typeof name === "string" && typeof version === "string"
    ? { name: name.slice(0, MAX_CLIENT_INFO_LENGTH), version: version.slice(0, MAX_CLIENT_INFO_LENGTH) }
    : undefined
}
