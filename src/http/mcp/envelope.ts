/**
 * The per-request `_meta` envelope of protocol revision 2026-07-28: every
 * request says which revision it speaks and what the client can do, in
 * reserved `io.modelcontextprotocol/*` keys of `params._meta`. Pure.
 */
import { Predicate } from "effect"
import { McpHttpError } from "./httpError.ts"
import { RpcErrorCode, type RpcId } from "./jsonrpc.ts"

/** The revisions of the stateless era this server serves, newest first. */
export const MODERN_PROTOCOL_VERSIONS: ReadonlyArray<string> = ["2026-07-28"]

/** The first revision of the stateless era: versions compare as strings. */
const FIRST_MODERN_VERSION = "2026-07-28"

/** Whether a version string names the stateless era (2026-07-28 or later). */
export const isModernVersion = (version: string): boolean => version >= FIRST_MODERN_VERSION

const KEY = {
  protocolVersion: "io.modelcontextprotocol/protocolVersion",
  clientCapabilities: "io.modelcontextprotocol/clientCapabilities",
  clientInfo: "io.modelcontextprotocol/clientInfo",
  logLevel: "io.modelcontextprotocol/logLevel"
} as const

/** The envelope keys that are lifted out of `_meta` before a method sees it. */
const ENVELOPE_KEYS: ReadonlySet<string> = new Set(Object.values(KEY))

/** The key servers stamp their identity under in every result's `_meta`. */
export const SERVER_INFO_META = "io.modelcontextprotocol/serverInfo"

/** What a client declares it can do, per request (`{}`: nothing optional). */
export interface ClientCapabilities {
  readonly experimental?: Readonly<Record<string, unknown>>
  readonly sampling?: Readonly<Record<string, unknown>>
  readonly elicitation?: Readonly<Record<string, unknown>>
  readonly roots?: Readonly<Record<string, unknown>>
  readonly extensions?: Readonly<Record<string, unknown>>
}

/** The validated envelope of one request. */
export interface Envelope {
  readonly protocolVersion: string
  readonly clientCapabilities: ClientCapabilities
  readonly clientInfo?: { readonly name: string; readonly version: string }
}

/** The `_meta` object of a message's params, when it has one. */
const metaOf = (params: unknown): Readonly<Record<string, unknown>> | undefined => {
  if (!Predicate.isRecord(params)) return undefined
  const meta = params["_meta"]
  return Predicate.isRecord(meta) && !Array.isArray(meta) ? meta : undefined
}

/** Whether a message claims the stateless era: its `_meta` carries a protocol version key (any value). */
export const hasClaim = (params: unknown): boolean => {
  const meta = metaOf(params)
  return meta !== undefined && KEY.protocolVersion in meta
}

/** The version a claim names, when it is a string. */
export const claimedVersion = (params: unknown): string | undefined => {
  const version = metaOf(params)?.[KEY.protocolVersion]
  return typeof version === "string" ? version : undefined
}

const LOG_LEVELS = new Set(["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"])
const CAPABILITY_KEYS = ["experimental", "sampling", "elicitation", "roots", "extensions"] as const

const isObject = (u: unknown): u is Readonly<Record<string, unknown>> => Predicate.isRecord(u) && !Array.isArray(u)

/** The envelope's problem, as the SDK words it: `[key, problem]`. */
const envelopeProblem = (meta: Readonly<Record<string, unknown>>): readonly [string, string] | undefined => {
  if (!(KEY.protocolVersion in meta)) return [KEY.protocolVersion, "missing"]
  if (!(KEY.clientCapabilities in meta)) return [KEY.clientCapabilities, "missing"]
  if (typeof meta[KEY.protocolVersion] !== "string") {
    return [KEY.protocolVersion, "Invalid input: expected string"]
  }
  const capabilities = meta[KEY.clientCapabilities]
  if (!isObject(capabilities)) return [KEY.clientCapabilities, "Invalid input: expected object"]
  for (const key of CAPABILITY_KEYS) {
    if (capabilities[key] !== undefined && !isObject(capabilities[key])) {
      return [`${KEY.clientCapabilities}.${key}`, "Invalid input: expected object"]
    }
  }
  const info = meta[KEY.clientInfo]
  if (info !== undefined) {
    if (!isObject(info)) return [KEY.clientInfo, "Invalid input: expected object"]
    if (typeof info["name"] !== "string") return [`${KEY.clientInfo}.name`, "Invalid input: expected string"]
    if (typeof info["version"] !== "string") return [`${KEY.clientInfo}.version`, "Invalid input: expected string"]
  }
  const level = meta[KEY.logLevel]
  if (level !== undefined && (typeof level !== "string" || !LOG_LEVELS.has(level))) {
    return [KEY.logLevel, "Invalid input: expected a logging level"]
  }
  return undefined
}

const MAX_CLIENT_INFO_LENGTH = 256

/**
 * Validate the envelope of a claiming message: `-32602` (HTTP 400) naming the
 * first problem, as the SDK's server does, so clients see the same errors.
 */
export const readEnvelope = (params: unknown, id: RpcId | undefined): Envelope | McpHttpError => {
  const meta = metaOf(params) ?? {}
  const problem = envelopeProblem(meta)
  if (problem !== undefined) {
    const [key, what] = problem
    return new McpHttpError({
      status: 400,
      code: RpcErrorCode.InvalidParams,
      message: `Invalid _meta envelope for protocol revision ${FIRST_MODERN_VERSION}: ${key}: ${what}`,
      data: { envelope: { key, problem: what } },
      ...(id === undefined ? {} : { id })
    })
  }
  const capabilities = meta[KEY.clientCapabilities] as Readonly<Record<string, unknown>>
  const clientCapabilities: Record<string, Readonly<Record<string, unknown>>> = {}
  for (const key of CAPABILITY_KEYS) {
    const value = capabilities[key]
    if (isObject(value)) clientCapabilities[key] = value
  }
  const info = meta[KEY.clientInfo]
  return {
    protocolVersion: meta[KEY.protocolVersion] as string,
    clientCapabilities,
    ...(isObject(info)
      ? {
        clientInfo: {
          name: String(info["name"]).slice(0, MAX_CLIENT_INFO_LENGTH),
          version: String(info["version"]).slice(0, MAX_CLIENT_INFO_LENGTH)
        }
      }
      : {})
  }
}

/** `params` without the envelope's keys in `_meta` (what a method reads). */
export const withoutEnvelope = (params: unknown): Readonly<Record<string, unknown>> => {
  if (!isObject(params)) return {}
  const meta = metaOf(params)
  if (meta === undefined) return params
  const rest = Object.fromEntries(Object.entries(meta).filter(([key]) => !ENVELOPE_KEYS.has(key)))
  return { ...params, _meta: rest }
}

/** A missing envelope on a request whose header names the stateless era. */
export const missingEnvelope = (id: RpcId | undefined): McpHttpError =>
  new McpHttpError({
    status: 400,
    code: RpcErrorCode.InvalidParams,
    message: `Invalid params: the MCP-Protocol-Version header names protocol revision ${FIRST_MODERN_VERSION}, ` +
      "but the request is missing the required per-request envelope key(s): _meta",
    data: { envelope: { missing: ["_meta"] } },
    ...(id === undefined ? {} : { id })
  })

/** A version this server does not serve in the stateless era: `-32022` listing what it does. */
export const unsupportedVersion = (requested: string | undefined, id: RpcId | undefined): McpHttpError =>
  new McpHttpError({
    status: 400,
    code: RpcErrorCode.UnsupportedVersion,
    message: `Unsupported protocol version: ${requested ?? "(none)"}`,
    data: { supported: MODERN_PROTOCOL_VERSIONS, ...(requested === undefined ? {} : { requested }) },
    ...(id === undefined ? {} : { id })
  })
