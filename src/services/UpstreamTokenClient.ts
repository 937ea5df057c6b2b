import { Context, type Effect, type Redacted, Schema } from "effect"

/** A successful upstream token response (RFC 6749 §5.1), parsed. */
export interface UpstreamTokenResponse {
  readonly accessToken: Redacted.Redacted<string>
  /** Absent when the provider keeps the refresh token it issued before. */
  readonly refreshToken?: Redacted.Redacted<string>
  readonly tokenType?: string
  /** Seconds until the access token expires, when the provider said. */
  readonly expiresIn?: number
  /** Seconds until the refresh token expires, when the provider said (`refresh_expires_in`). */
  readonly refreshExpiresIn?: number
  /** Present when the provider changed the scope (RFC 6749 §5.1). */
  readonly scopes?: ReadonlyArray<string>
}

/** An authorization code returned by the provider, with what the token request must repeat (RFC 6749 §4.1.3, RFC 7636 §4.5). */
export interface UpstreamCodeGrant {
  readonly code: Redacted.Redacted<string>
  /** The redirect URI sent in the authorization request. */
  readonly redirectUri: string
  /** The PKCE verifier of the authorization request. */
  readonly codeVerifier: Redacted.Redacted<string>
}

/**
 * Why an upstream token request failed:
 * - `InvalidGrant`: the provider refused the refresh token or code (`invalid_grant`): the user must authorize again;
 * - `Rejected`: any other OAuth error response from the provider (`error` says which);
 * - `Unavailable`: the provider could not be reached, timed out, or answered 5xx (retryable);
 * - `InvalidResponse`: the provider answered something that is not a token response;
 * - `UnknownProvider`: no upstream provider is configured under that id.
 */
export const UpstreamTokenErrorReason = Schema.Literal("InvalidGrant", "Rejected", "Unavailable", "InvalidResponse", "UnknownProvider")
export type UpstreamTokenErrorReason = typeof UpstreamTokenErrorReason.Type

/** An upstream token endpoint failure. Never carries a token. */
export class UpstreamTokenError extends Schema.TaggedError<UpstreamTokenError>()("UpstreamTokenError", {
  providerId: Schema.String,
  reason: UpstreamTokenErrorReason,
  /** The provider's `error` code, when it sent one. */
  error: Schema.optional(Schema.String),
  status: Schema.optional(Schema.Number),
  description: Schema.optional(Schema.String),
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    const detail = [this.error, this.status === undefined ? undefined : `HTTP ${this.status}`, this.description]
      .filter((part) => part !== undefined)
      .join(", ")
    return `upstream ${this.providerId}: ${this.reason}${detail === "" ? "" : ` (${detail})`}`
  }
}

/**
 * The token endpoints of upstream OAuth providers (seed 002's orchestrated
 * mode): what the provider-token refresher calls when a provider access token
 * is about to expire, and what upstream federation calls to redeem the
 * provider's authorization code.
 */
export class UpstreamTokenClient extends Context.Tag("mcp-oauth-store/UpstreamTokenClient")<
  UpstreamTokenClient,
  UpstreamTokenClient.Service
>() {}

export declare namespace UpstreamTokenClient {
  export interface Service {
    /** Exchange a provider refresh token for fresh tokens (`grant_type=refresh_token`). */
    readonly refresh: (
      providerId: string,
      refreshToken: Redacted.Redacted<string>
    ) => Effect.Effect<UpstreamTokenResponse, UpstreamTokenError>
    /** Redeem a provider authorization code for tokens (`grant_type=authorization_code`, with PKCE). */
    readonly exchangeCode: (
      providerId: string,
      grant: UpstreamCodeGrant
    ) => Effect.Effect<UpstreamTokenResponse, UpstreamTokenError>
  }
}
