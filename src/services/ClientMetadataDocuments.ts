import { Context, Data, type Effect } from "effect"

/** A Client ID Metadata Document as fetched: the parsed JSON and the response's caching header. */
export interface FetchedClientMetadata {
  /** The body, parsed as JSON (not yet validated as client metadata). */
  readonly document: unknown
  /** The response's `Cache-Control` header, when it had one. */
  readonly cacheControl: string | undefined
}

/** Why a metadata document could not be fetched. */
export type ClientMetadataFetchReason =
  /** The URL is not https, or its host is (or resolves to) an address that is not public. */
  | "Forbidden"
  /** The server answered with a redirect, which is never followed. */
  | "Redirect"
  /** Any status but 200. */
  | "Status"
  /** Not `application/json`. */
  | "ContentType"
  /** Larger than the size limit. */
  | "TooLarge"
  /** Not answered within the time limit. */
  | "Timeout"
  /** Not JSON. */
  | "Malformed"
  /** No connection (DNS, TCP or TLS failure). */
  | "Unreachable"

/** A metadata document that could not be fetched; the description names no secret and no response content. */
export class ClientMetadataFetchError extends Data.TaggedError("ClientMetadataFetchError")<{
  readonly reason: ClientMetadataFetchReason
  readonly description: string
}> {
  override get message(): string {
    return `${this.reason}: ${this.description}`
  }
}

/**
 * Fetching OAuth Client ID Metadata Documents (a `client_id` that is an https
 * URL names the document describing the client). An implementation must be
 * safe against server-side request forgery: https only, no redirects
 * followed, only public addresses connected to, JSON only, bounded in time
 * and size. The OAuth engine validates and caches what it returns; when no
 * implementation is provided, such client ids are unknown clients and the
 * metadata does not advertise support.
 */
export class ClientMetadataDocuments extends Context.Tag("mcp-oauth-store/ClientMetadataDocuments")<
  ClientMetadataDocuments,
  ClientMetadataDocuments.Service
>() {}

export declare namespace ClientMetadataDocuments {
  export interface Service {
    /** Fetch the document at `url` (already checked to be a client id URL). */
    readonly fetch: (url: string) => Effect.Effect<FetchedClientMetadata, ClientMetadataFetchError>
  }
}
