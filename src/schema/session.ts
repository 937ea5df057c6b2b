import { Schema } from "effect"
import { EpochMillis } from "./common.ts"

/** The MCP client's self-description from `initialize`. */
export const ClientInfo = Schema.Struct({
  name: Schema.String,
  version: Schema.String
})
export type ClientInfo = typeof ClientInfo.Type

/**
 * An MCP session. Sessions are indexed by the hash of the API key (or
 * principal key) they belong to; the key itself is never stored.
 */
export const Session = Schema.Struct({
  id: Schema.String,
  apiKeyHash: Schema.String,
  /** The principal the session is bound to, when it was created for an OAuth token. */
  subject: Schema.optional(Schema.String),
  initialized: Schema.Boolean,
  protocolVersion: Schema.optional(Schema.String),
  clientInfo: Schema.optional(ClientInfo),
  createdAt: EpochMillis,
  lastAccessedAt: EpochMillis,
  /** Sliding: `lastAccessedAt` plus the idle TTL. */
  idleExpiresAt: EpochMillis,
  /** Fixed at creation: the session's absolute lifetime. */
  absoluteExpiresAt: EpochMillis
})
export type Session = typeof Session.Type

/** Why a session was removed to make room for another. */
export type EvictionReason = "PerKeyLimit" | "GlobalLimit"

/** A session evicted by `SessionStore.create`. */
export interface SessionEviction {
  readonly session: Session
  readonly reason: EvictionReason
}
