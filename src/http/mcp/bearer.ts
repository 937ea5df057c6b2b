/**
 * Bearer authentication of a protected resource (RFC 6750 §2.1): the token
 * from the `Authorization` header, verified by the engine, and every failure
 * answered with a `WWW-Authenticate: Bearer` challenge that points to the
 * resource's metadata (RFC 9728 §5.1), so an MCP client can discover where to
 * authorize. Reusable by any resource endpoint of the server.
 */
import type { HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { type InsufficientScope, InvalidToken } from "../../errors/OAuthError.ts"
import type { RenderContext } from "../../errors/render.ts"
import { type VerifiedAccessToken, verifyAccessToken } from "../../oauth/accessTokens.ts"
import { OAuthConfig } from "../../oauth/config.ts"
import type { Jwks } from "../../services/Jwks.ts"
import type { StoreError } from "../../services/StoreError.ts"
import type { TokenStore } from "../../services/TokenStore.ts"
import { resourceMetadataUrl } from "../metadata.ts"
import type { RequestHeaders } from "../body.ts"
import { orErrorResponse } from "../respond.ts"

/** What the `Authorization` header presents: no bearer token, a malformed one, or a token. */
export type PresentedBearer =
  | { readonly _tag: "Absent" }
  | { readonly _tag: "Malformed" }
  | { readonly _tag: "Token"; readonly token: string }

/** RFC 6750 §2.1 `b64token`. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/

/** Longer than any token this server issues; refused before it reaches a verifier or a store. */
const MAX_TOKEN_LENGTH = 8192

/**
 * Read `Authorization: Bearer <token>` (scheme case-insensitive). Another
 * scheme, or `Bearer` with nothing after it, presents no bearer token.
 */
export const presentedBearer = (header: string | undefined): PresentedBearer => {
  const match = /^bearer(?: +(.*))?$/i.exec((header ?? "").trim())
  const token = match?.[1]?.trim() ?? ""
  if (token === "") return { _tag: "Absent" }
  return B64TOKEN.test(token) && token.length <= MAX_TOKEN_LENGTH ? { _tag: "Token", token } : { _tag: "Malformed" }
}

/** Options of a protected resource. */
export interface BearerOptions {
  /** The resource's path, for its metadata URL (default `/mcp`). */
  readonly resourcePath?: string
  /** The audiences a token may carry; default: the configured default audience and resources. */
  readonly audiences?: ReadonlyArray<string>
  /** Scopes every request to the resource needs. */
  readonly requiredScopes?: ReadonlyArray<string>
  /** Scopes named in the challenge (`scope=`): what a client should ask for to use the resource. */
  readonly challengeScopes?: ReadonlyArray<string>
}

/** The errors `authenticate` fails with; all of them render as the resource's challenge. */
export type BearerError = InvalidToken | InsufficientScope | StoreError

/**
 * Verify the request's bearer token: signature or store record, issuer,
 * expiry, audience (the server's own resources) and the grant. A request
 * without a bearer token fails with `InvalidToken` too; `bearerContext`
 * renders it without an `error` parameter (RFC 6750 §3.1).
 */
export const authenticate = (
  request: RequestHeaders,
  options: BearerOptions = {}
): Effect.Effect<VerifiedAccessToken, BearerError, OAuthConfig | Jwks | TokenStore> =>
  Effect.gen(function*() {
    const presented = presentedBearer(request.headers["authorization"])
    if (presented._tag === "Absent") return yield* new InvalidToken({ description: "a bearer token is required" })
    if (presented._tag === "Malformed") return yield* new InvalidToken({ description: "the bearer token is malformed" })
    const config = yield* OAuthConfig
    const audiences = options.audiences ?? [...new Set([config.defaultAudience, ...config.resources])]
    return yield* verifyAccessToken(
      presented.token,
      options.requiredScopes === undefined
        ? { expectedAudience: audiences }
        : { expectedAudience: audiences, requiredScopes: options.requiredScopes }
    )
  })

/** How failures of a protected resource render: a Bearer challenge naming its metadata URL. */
export const bearerContext = (
  request: RequestHeaders,
  options: BearerOptions = {}
): Effect.Effect<RenderContext, never, OAuthConfig> =>
  Effect.map(OAuthConfig, (config) => ({
    challenge: {
      scheme: "Bearer",
      resourceMetadata: resourceMetadataUrl(config.issuer, options.resourcePath),
      ...(options.challengeScopes === undefined ? {} : { scope: options.challengeScopes }),
      tokenPresented: presentedBearer(request.headers["authorization"])._tag !== "Absent"
    }
  }))

/**
 * Serve a protected resource: authenticate, then `handle` the request with
 * the verified token. Every failure (of authentication or of `handle`) is
 * answered through `respond.ts` with the resource's challenge: 401
 * `invalid_token`, 403 `insufficient_scope` with `scope=`, 503 on a store
 * outage, an opaque 500 otherwise.
 */
export const protectedResource = <E, R>(
  request: RequestHeaders,
  handle: (token: VerifiedAccessToken) => Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
  options: BearerOptions = {}
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, R | OAuthConfig | Jwks | TokenStore> =>
  Effect.flatMap(
    bearerContext(request, options),
    (context) => orErrorResponse(Effect.flatMap(authenticate(request, options), handle), context)
  )
