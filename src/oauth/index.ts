/**
 * The OAuth engine: the protocol logic of the authorization server and the
 * resource server over the store ports, with no HTTP in it.
 *
 * - Settings: `OAuthConfig` (`OAuthConfig.layer(options)`).
 * - Signing keys: the `Jwks` port's implementation, `JwksLive.layer(options)`.
 * - The authorization-code flow as functions: `registerClient`, `authorize`,
 *   `approve` / `deny`, `token` (`exchangeCode`, `refreshTokens`), `revoke`,
 *   `introspect`.
 * - The resource server: `verifyAccessToken`, `requireScopes` (tool-level scopes).
 * - Upstream federation (seed 002's orchestrated auth): `Federation.layer(options)`,
 *   `startUpstreamAuthorization`, `completeUpstreamAuthorization`.
 * - Upstream provider tokens: `ProviderTokenRefresher` over an
 *   `UpstreamTokenClient` (`UpstreamHttp.layer(providers)`) and a
 *   `RefreshLock` (`RefreshLockMemory.layer` in one process).
 */
export * from "./accessTokens.ts"
export * from "./authorize.ts"
export * from "./clientAuth.ts"
export * from "./config.ts"
export * from "./federation.ts"
export * from "./pkce.ts"
export * from "./providerTokenRefresher.ts"
export * from "./redirectUris.ts"
export * from "./registration.ts"
export * from "./revocation.ts"
export * from "./scopes.ts"
export * from "./tokenEndpoint.ts"
export * as JwksLive from "./jwks.ts"
export * as RefreshLockMemory from "./refreshLock.ts"
export * as UpstreamHttp from "./upstreamHttp.ts"
