/**
 * Access-token authentication of a protected resource: `Authorization:
 * Bearer <token>` (RFC 6750 §2.1), or `Authorization: DPoP <token>` with a
 * `DPoP` proof (RFC 9449 §7.1), verified by the engine
 * (`verifyPresentedToken`), and every failure answered with the resource's
 * challenges: `Bearer` and `DPoP` (with `algs`), both pointing to the
 * resource's metadata (RFC 9728 §5.1), so an MCP client can discover where
 * to authorize. Reusable by any resource endpoint of the server.
 */
import type { HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { InvalidToken } from "../../errors/OAuthError.ts"
import type { RenderContext } from "../../errors/render.ts"
import type { VerifiedAccessToken } from "../../oauth/accessTokens.ts"
import { OAuthConfig, type ResolvedOAuthOptions } from "../../oauth/config.ts"
import { type PresentedTokenError, verifyPresentedToken } from "../../oauth/presentedToken.ts"
import type { Crypto } from "../../services/Crypto.ts"
import type { Jwks } from "../../services/Jwks.ts"
import type { ReplayCache } from "../../services/ReplayCache.ts"
import type { TokenStore } from "../../services/TokenStore.ts"
import { dpopProofInput, type ResourceRequest, withDpopNonce } from "../dpop.ts"
import { MCP_PATH, resourceMetadataUrl } from "../metadata.ts"
import { errorResponse } from "../respond.ts"

/** What the `Authorization` header presents: no token, a malformed one, or a token under its scheme. */
export type PresentedCredentials =
  | { readonly _tag: "Absent" }
  | { readonly _tag: "Malformed"; readonly scheme: "Bearer" | "DPoP" }
  | { readonly _tag: "Token"; readonly scheme: "Bearer" | "DPoP"; readonly token: string }

/** RFC 6750 §2.1 `b64token`, RFC 9110 §11.2 `token68`. */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/

/** Longer than any token this server issues; refused before it reaches a verifier or a store. */
const MAX_TOKEN_LENGTH = 8192

/**
 * Read `Authorization: Bearer <token>` or `Authorization: DPoP <token>`
 * (schemes case-insensitive). Another scheme, or a scheme with nothing after
 * it, presents no token.
 */
export const presentedCredentials = (header: string | undefined): PresentedCredentials => {
  const match = /^(bearer|dpop)(?: +(.*))?$/i.exec((header ?? "").trim())
  const token = match?.[2]?.trim() ?? ""
  if (match === null || token === "") return { _tag: "Absent" }
  const scheme = match[1]?.toLowerCase() === "dpop" ? "DPoP" : "Bearer"
  return TOKEN68.test(token) && token.length <= MAX_TOKEN_LENGTH ? { _tag: "Token", scheme, token } : { _tag: "Malformed", scheme }
}

/** Options of a protected resource. */
export interface BearerOptions {
  /** The resource's path, for its metadata URL and DPoP's `htu` (default `/mcp`). */
  readonly resourcePath?: string
  /** The audiences a token may carry; default: the configured default audience and resources. */
  readonly audiences?: ReadonlyArray<string>
  /** Scopes every request to the resource needs. */
  readonly requiredScopes?: ReadonlyArray<string>
  /** Scopes named in the challenge (`scope=`): what a client should ask for to use the resource. */
  readonly challengeScopes?: ReadonlyArray<string>
}

/** The errors `authenticate` fails with; all of them render as the resource's challenge. */
export type BearerError = PresentedTokenError

/** What authenticating a request needs. */
export type BearerServices = OAuthConfig | Jwks | TokenStore | Crypto | ReplayCache

/**
 * Verify the request's access token: signature or store record, issuer,
 * expiry, audience (the server's own resources) and the grant; a DPoP-bound
 * token only with the DPoP scheme and a valid proof of its key (RFC 9449
 * §7), a bearer token only with the Bearer scheme. A request without a token
 * fails with `InvalidToken` too; `bearerContext` renders it without an
 * `error` parameter (RFC 6750 §3.1).
 */
export const authenticate = (
  request: ResourceRequest,
  options: BearerOptions = {}
): Effect.Effect<VerifiedAccessToken, BearerError, BearerServices> =>
  authenticatePresented(request, presentedCredentials(request.headers["authorization"]), options)

/** `authenticate` with the `Authorization` header already read (steps chained without a generator: every request runs this). */
const authenticatePresented = (
  request: ResourceRequest,
  presented: PresentedCredentials,
  options: BearerOptions
): Effect.Effect<VerifiedAccessToken, BearerError, BearerServices> => {
  if (presented._tag === "Absent") return Effect.fail(new InvalidToken({ description: "an access token is required" }))
  if (presented._tag === "Malformed") return Effect.fail(new InvalidToken({ description: "the access token is malformed" }))
  return Effect.flatMap(OAuthConfig, (config) => {
    // The configured resources (the default audience first, no duplicates): resolved once, not per request.
    const audiences = options.audiences ?? config.resources
    const verification = options.requiredScopes === undefined
      ? { expectedAudience: audiences }
      : { expectedAudience: audiences, requiredScopes: options.requiredScopes }
    return request.headers["dpop"] === undefined
      ? verifyPresentedToken({ scheme: presented.scheme, token: presented.token, dpop: undefined }, verification)
      : Effect.flatMap(dpopProofInput(request, options.resourcePath ?? MCP_PATH), (dpop) =>
        verifyPresentedToken({ scheme: presented.scheme, token: presented.token, dpop }, verification))
  })
}

/**
 * How failures of a protected resource render: a `Bearer` and a `DPoP`
 * challenge (RFC 9449 §7.1: `algs`, the error on the scheme the request
 * used), both naming the metadata URL.
 */
export const bearerContext = (
  request: ResourceRequest,
  options: BearerOptions = {}
): Effect.Effect<RenderContext, never, OAuthConfig> =>
  Effect.map(OAuthConfig, (config) => renderContext(config, presentedCredentials(request.headers["authorization"]), options))

/** The challenges of a protected resource for a request that presented `presented`. */
const renderContext = (config: ResolvedOAuthOptions, presented: PresentedCredentials, options: BearerOptions): RenderContext => ({
  challenge: {
    scheme: "Bearer",
    resourceMetadata: resourceMetadataUrl(config.issuer, options.resourcePath),
    ...(options.challengeScopes === undefined ? {} : { scope: options.challengeScopes }),
    tokenPresented: presented._tag !== "Absent",
    dpop: { algs: config.dpop.algorithms, presented: presented._tag !== "Absent" && presented.scheme === "DPoP" }
  }
})

/**
 * Serve a protected resource: authenticate, then `handle` the request with
 * the verified token. Every failure (of authentication or of `handle`) is
 * answered through `respond.ts` with the resource's challenges: 401
 * `invalid_token` or `invalid_dpop_proof` (`use_dpop_nonce` with a
 * `DPoP-Nonce`), 403 `insufficient_scope` with `scope=`, 503 on a store
 * outage, an opaque 500 otherwise. Every answer to a DPoP request carries the
 * current `DPoP-Nonce` when the server requires nonces.
 */
export const protectedResource = <E, R>(
  request: ResourceRequest,
  handle: (token: VerifiedAccessToken) => Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
  options: BearerOptions = {}
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, R | BearerServices> => {
  // The header is read once; the challenges are built only when the request is refused.
  const presented = presentedCredentials(request.headers["authorization"])
  const answer = Effect.catchAll(
    Effect.flatMap(authenticatePresented(request, presented, options), handle),
    (error) => Effect.flatMap(OAuthConfig, (config) => errorResponse(error, renderContext(config, presented, options)))
  )
  return request.headers["dpop"] === undefined ? answer : Effect.flatMap(answer, (response) => withDpopNonce(response, "resource"))
}
