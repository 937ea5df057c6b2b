/**
 * `mcp-oauth-store/oauth`: the OAuth 2.1 engine over the store services, with
 * no HTTP in it: settings, signing keys, the authorization-code flow with PKCE,
 * refresh rotation, revocation and introspection, access-token verification
 * for the resource side, upstream federation and provider-token refresh.
 */

// Settings and signing keys.
export {
  DPOP_ALGORITHMS,
  type DpopAlgorithm,
  type DpopOptions,
  InvalidOAuthOptions,
  OAuthConfig,
  type OAuthOptions,
  type TokenClaimsContext,
  type TokenClaimsHook
} from "../oauth/config.ts"
export * as StoredJwks from "../oauth/jwks.ts"

// Clients.
export {
  type ClientMetadataRules,
  type ClientRegistration,
  DEFAULT_GRANT_TYPES,
  registerClient,
  registrationResponse
} from "../oauth/registration.ts"
export { authenticateClient, type ClientCredentials } from "../oauth/clientAuth.ts"
export { type ClientKind, matchRedirectUri, redirectUriProblem } from "../oauth/redirectUris.ts"

// Client ID Metadata Documents: a `client_id` that is an https URL (needs a `ClientMetadataDocuments` service).
export {
  clientIdUrlProblem,
  clientMetadataDocumentsSupported,
  DEFAULT_DOCUMENT_TTL,
  documentTtl,
  findClient,
  MAX_DOCUMENT_TTL,
  MIN_DOCUMENT_TTL,
  validateClientMetadataDocument
} from "../oauth/clientMetadataDocument.ts"

// RFC 8707 resource indicators, compared in their canonical form.
export { canonicalResource, sameResource } from "../oauth/resources.ts"

// The authorization endpoint and the user's consent.
export {
  approve,
  authorize,
  type AuthorizationApproved,
  AuthorizationErrorRedirect,
  type AuthorizationRedirect,
  type AuthorizationRequest,
  type ConsentDecision,
  deny,
  type PendingAuthorization,
  pendingAuthorization,
  redirectLocation
} from "../oauth/authorize.ts"

// The token endpoint, revocation (RFC 7009) and introspection (RFC 7662).
export {
  type AuthorizationCodeGrantRequest,
  exchangeCode,
  type IssuedTokens,
  refreshTokens,
  type RefreshTokenGrantRequest,
  token,
  type TokenEndpointError,
  type TokenEndpointServices,
  type TokenRequest,
  tokenResponse
} from "../oauth/tokenEndpoint.ts"
export {
  introspect,
  type IntrospectionRequest,
  type IntrospectionResponse,
  revoke,
  type RevocationRequest
} from "../oauth/revocation.ts"

// The resource side: access tokens and tool-level scopes.
export {
  ACCESS_TOKEN_TYP,
  type IssuedAccessToken,
  issueAccessToken,
  type TokenSubject,
  type VerifiedAccessToken,
  verifyAccessToken,
  type VerifyAccessTokenOptions
} from "../oauth/accessTokens.ts"
export { requireScopes } from "../oauth/scopes.ts"

// DPoP (RFC 9449): proofs at the token endpoint and the resource, DPoP-bound tokens.
export {
  accessTokenHash,
  checkDpopProof,
  type CheckedDpopProof,
  currentDpopNonce,
  type DpopEndpoint,
  DpopKeyCache,
  type DpopProofInput,
  normalizeHtu,
  rememberDpopProof
} from "../oauth/dpop.ts"
export { type PresentedToken, type PresentedTokenError, verifyPresentedToken } from "../oauth/presentedToken.ts"

// Upstream federation and provider tokens (seed 002's orchestrated mode).
export {
  completeUpstreamAuthorization,
  Federation,
  FederationError,
  type FederationOptions,
  startUpstreamAuthorization,
  type UpstreamAuthorizationStarted,
  type UpstreamCallback,
  UPSTREAM_PROVIDER_ID
} from "../oauth/federation.ts"
export {
  ProviderTokenRefresher,
  type ProviderTokenError,
  type ProviderTokenRefresherOptions,
  ReauthorizationRequired
} from "../oauth/providerTokenRefresher.ts"
export * as HttpUpstreamTokenClient from "../oauth/upstreamHttp.ts"
export * as LocalRefreshLock from "../oauth/refreshLock.ts"
