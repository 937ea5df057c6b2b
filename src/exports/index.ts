/**
 * `mcp-oauth-store`: token and session stores for OAuth-protected MCP
 * servers, on Effect.
 *
 * The core: the services (ports) your code is written against, their records
 * and options, the one backend error (`StoreError`) and the OAuth errors with
 * their HTTP rendering. A backend comes from its own subpath
 * (`mcp-oauth-store/memory`, `/sqlite`, `/file`, `/redis`, `/kv`, `/durable`, `/tiered`),
 * the `Crypto` implementation from `/crypto/node` or `/crypto/web`, the OAuth
 * engine from `/oauth`.
 */

// Services: one Context.Tag each; methods never need anything from context.
export { TokenStore, type NewRecord, type NewRefreshToken } from "../services/TokenStore.ts"
export { SessionStore, type CreatedSession, type NewSession, type SessionPatch } from "../services/SessionStore.ts"
export { ProviderTokenStore } from "../services/ProviderTokenStore.ts"
export { ClientStore, type NewClient } from "../services/ClientStore.ts"
export {
  ClientMetadataDocuments,
  ClientMetadataFetchError,
  type ClientMetadataFetchReason,
  type FetchedClientMetadata
} from "../services/ClientMetadataDocuments.ts"
export { SigningKeyStore } from "../services/SigningKeyStore.ts"
export { type RateLimitDecision, RateLimiter, type RateLimitPolicy } from "../services/RateLimiter.ts"
export { ReplayCache, type ReplaySighting } from "../services/ReplayCache.ts"
export { Crypto } from "../services/Crypto.ts"
export {
  Jwks,
  type JwtClaims,
  JwtRejected,
  type JwtSignOptions,
  type JwtVerifyOptions,
  type PublicJwks,
  type SignedJwt,
  type SigningKeyInfo,
  type VerifiedJwt
} from "../services/Jwks.ts"
export { type Lease, RefreshLock } from "../services/RefreshLock.ts"
export {
  type UpstreamCodeGrant,
  UpstreamTokenClient,
  UpstreamTokenError,
  UpstreamTokenErrorReason,
  type UpstreamTokenResponse
} from "../services/UpstreamTokenClient.ts"
export { CacheAdapter } from "../services/CacheAdapter.ts"
export { McpEventBus } from "../services/McpEventBus.ts"
export {
  McpEventStore,
  type McpStreamEvent,
  type McpStreamReplay,
  type OpenStreamOptions
} from "../services/McpEventStore.ts"
export { StoreError, StoreErrorReason } from "../services/StoreError.ts"
export { type SealedContainer, StoreMaintenance } from "../services/StoreMaintenance.ts"

// Records (Effect Schema) and options.
export { ClientMetadata, RegisteredClient, TokenEndpointAuthMethod } from "../schema/client.ts"
export { AuthorizationCode, type CodeConsumption } from "../schema/code.ts"
export { ProviderTokens } from "../schema/providerTokens.ts"
export { ClientInfo, type EvictionReason, Session, type SessionEviction } from "../schema/session.ts"
export { Jwk, SigningAlgorithm, SigningKey, SigningKeySet, SigningKeyStatus } from "../schema/signingKey.ts"
export { AccessTokenRecord, Grant, IssuedPair, RefreshTokenRecord, type Rotation } from "../schema/token.ts"
export { Transaction } from "../schema/transaction.ts"
export { McpEvent, PromptsListChanged, ResourcesListChanged, ResourceUpdated, ToolsListChanged } from "../schema/mcpEvent.ts"
export {
  RECORD_KINDS,
  type RecordCounts,
  type RecordKind,
  type Reseal,
  type SealedRef,
  StoredRecord
} from "../schema/storedRecord.ts"
export type { AtomicOperation, StoreCapabilities } from "../schema/capabilities.ts"
export type {
  McpEventBusOptions,
  McpEventStoreOptions,
  ProviderTokenStoreOptions,
  RateLimiterOptions,
  ReplayCacheOptions,
  SessionStoreOptions,
  StoreOptions,
  SweepOptions,
  TokenStoreOptions
} from "../schema/options.ts"

// Metrics, opt-in: every store's operations and outcomes (see README, "Metrics and traces").
export * as Metrics from "../layers/instrumented/index.ts"

// Encryption keys, for every `Crypto` implementation.
export { generateKey, keyringConfig, type KeyringOptions } from "../layers/crypto/keyring.ts"

// OAuth errors and their rendering as HTTP responses.
export {
  AccessDenied,
  InsufficientScope,
  InvalidClient,
  InvalidClientMetadata,
  InvalidDpopProof,
  InvalidGrant,
  InvalidRedirectUri,
  InvalidRequest,
  InvalidScope,
  InvalidTarget,
  InvalidToken,
  isOAuthError,
  OAuthError,
  OAuthErrorCodes,
  type OAuthErrorTag,
  ServerError,
  TemporarilyUnavailable,
  UnauthorizedClient,
  UnsupportedGrantType,
  UseDpopNonce
} from "../errors/OAuthError.ts"
export {
  type BasicChallenge,
  type BearerChallenge,
  type DpopChallenge,
  type RenderContext,
  type RenderedError,
  renderOAuthError,
  toOAuthError
} from "../errors/render.ts"
