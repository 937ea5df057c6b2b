import { Context, type Effect, type Option } from "effect"
import type { ClientInfo, Session, SessionEviction } from "../schema/session.ts"
import type { StoreError } from "./StoreError.ts"

/** What a new MCP session starts with. */
export interface NewSession {
  /** The API key (or principal key) the session belongs to; kept only as a hash. */
  readonly apiKey: string
  readonly subject?: string
  readonly initialized?: boolean
  readonly protocolVersion?: string
  readonly clientInfo?: ClientInfo
}

/** The MCP state of a session that `update` may change. */
export interface SessionPatch {
  readonly initialized?: boolean
  readonly protocolVersion?: string
  readonly clientInfo?: ClientInfo
}

/** A new session, and what was evicted to make room for it. */
export interface CreatedSession {
  readonly session: Session
  /** Sessions removed to stay within the per-key and global limits. */
  readonly evicted: ReadonlyArray<SessionEviction>
}

/**
 * MCP sessions: a sliding idle TTL (24 h) plus an absolute lifetime, at most 5
 * per API key and 10,000 in all, evicting the least recently accessed.
 */
export class SessionStore extends Context.Tag("mcp-oauth-store/SessionStore")<SessionStore, SessionStore.Service>() {}

export declare namespace SessionStore {
  export interface Service {
    /** Create a session with a fresh random id, evicting what the limits require. */
    readonly create: (input: NewSession) => Effect.Effect<CreatedSession, StoreError>
    /** Read a session and refresh its last access (written at most once per touch interval). */
    readonly get: (id: string) => Effect.Effect<Option.Option<Session>, StoreError>
    /** Change a live session's MCP state; `None` when it does not exist. */
    readonly update: (id: string, patch: SessionPatch) => Effect.Effect<Option.Option<Session>, StoreError>
    /** `true` when the session existed. */
    readonly delete: (id: string) => Effect.Effect<boolean, StoreError>
    /** The live sessions of an API key, least recently accessed first. */
    readonly listByApiKey: (apiKey: string) => Effect.Effect<ReadonlyArray<Session>, StoreError>
  }
}
