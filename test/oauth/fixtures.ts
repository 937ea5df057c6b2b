/**
 * The OAuth engine's test wiring: the memory stores and an ephemeral
 * `NodeCrypto` under an `OAuthConfig` and a `Jwks`, one fresh build per test
 * (so `TestClock` drives its fibers), and the steps of a code flow.
 */
import { Effect, Layer, Redacted } from "effect"
import { createHash } from "node:crypto"
import { NodeCrypto } from "../../src/exports/crypto/node.ts"
import type { TrustProxy } from "../../src/http/clientAddress.ts"
import { limitsLayer, type LimitsOptions } from "../../src/http/limits.ts"
import * as MemoryStore from "../../src/layers/memory/index.ts"
import { type AuthorizationRequest, authorize, approve } from "../../src/oauth/authorize.ts"
import type { ClientCredentials } from "../../src/oauth/clientAuth.ts"
import { OAuthConfig, type OAuthOptions } from "../../src/oauth/config.ts"
import * as JwksLive from "../../src/oauth/jwks.ts"
import { registerClient } from "../../src/oauth/registration.ts"
import { exchangeCode } from "../../src/oauth/tokenEndpoint.ts"

export const ISSUER = "https://auth.example"
export const RESOURCE = "https://mcp.example/mcp"
export const OTHER_RESOURCE = "https://other.example/mcp"
export const REDIRECT = "https://app.example/callback"
export const SCOPES = ["read", "write", "admin"]

/** The memory stores with an ephemeral key; the sweeper daily, so long clock moves stay cheap. */
export const stores = (options: MemoryStore.MemoryOptions = {}) =>
  MemoryStore.layer({ sweepInterval: "1 day", ...options }).pipe(Layer.provideMerge(NodeCrypto.layerEphemeral))

export interface EngineOptions {
  readonly oauth?: Partial<OAuthOptions>
  readonly jwks?: JwksLive.JwksOptions
  readonly stores?: MemoryStore.MemoryOptions
  /** The server's request limits (`HttpLimits`, for the handlers' tests): defaults unless given. */
  readonly limits?: LimitsOptions
  readonly trustProxy?: TrustProxy
}

/** Settings, signing keys (ES256 unless asked: fast to generate), the server's request limits and stores. */
export const engine = (options: EngineOptions = {}) => {
  const config = OAuthConfig.layer({ issuer: ISSUER, resources: [RESOURCE, OTHER_RESOURCE], scopesSupported: SCOPES, ...options.oauth })
  const limits = limitsLayer({
    ...(options.limits === undefined ? {} : { limits: options.limits }),
    ...(options.trustProxy === undefined ? {} : { trustProxy: options.trustProxy })
  })
  return Layer.mergeAll(
    config,
    JwksLive.layer({ algorithm: "ES256", refreshInterval: "1 day", ...options.jwks }),
    Layer.provide(limits, config)
  ).pipe(Layer.provideMerge(stores(options.stores)))
}

/** Run a test body over a fresh build of the engine. */
export const using = (options: EngineOptions = {}) =>
<A, E, R>(body: Effect.Effect<A, E, R>) =>
  Effect.scoped(Effect.provide(body, Layer.fresh(engine(options)))) as Effect.Effect<A, unknown, never>

/** A PKCE pair computed independently of the code under test. */
export const pkce = (seed = "a") => {
  const verifier = `${seed}-verifier-`.padEnd(64, "x")
  const challenge = createHash("sha256").update(verifier).digest("base64url")
  return { verifier, challenge }
}

/** The state the authorization requests of `authorizeQuery` carry. */
export const CLIENT_STATE = "client-state"

/** The query of an authorization request (scopes "read write", PKCE S256, the resource), with overrides. */
export const authorizeQuery = (clientId: string, overrides: Record<string, string> = {}): string =>
  new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: REDIRECT,
    scope: "read write",
    state: CLIENT_STATE,
    code_challenge: pkce().challenge,
    code_challenge_method: "S256",
    resource: RESOURCE,
    ...overrides
  }).toString()

export const publicClientMetadata = {
  redirect_uris: [REDIRECT],
  token_endpoint_auth_method: "none",
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  client_name: "Test client",
  scope: "read write"
}

/** Register a public client (`none`) that may use `read` and `write`. */
export const registerPublic = (metadata: Record<string, unknown> = {}) =>
  Effect.map(registerClient({ ...publicClientMetadata, ...metadata }), (r) => r.client)

export const credentials = (clientId: string): ClientCredentials => ({ clientId, method: "none" })

export const authorizationRequest = (clientId: string, overrides: Partial<AuthorizationRequest> = {}): AuthorizationRequest => ({
  responseType: "code",
  clientId,
  redirectUri: REDIRECT,
  scope: "read write",
  state: "state-123",
  codeChallenge: pkce().challenge,
  codeChallengeMethod: "S256",
  resource: RESOURCE,
  ...overrides
})

/** Register, authorize, approve as `alice`: the client and the code. */
export const codeFor = (overrides: Partial<AuthorizationRequest> = {}, grantedScopes?: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const client = yield* registerPublic()
    const pending = yield* authorize(authorizationRequest(client.clientId, overrides))
    const approved = yield* approve({ transactionId: pending.transaction.id, subject: "alice", grantedScopes })
    const code = approved.redirect.params["code"] as string
    return { client, pending, approved, code }
  })

/** The full front channel and the code exchange: tokens for `alice`. */
export const tokensFor = (overrides: Partial<AuthorizationRequest> = {}, grantedScopes?: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const flow = yield* codeFor(overrides, grantedScopes)
    const tokens = yield* exchangeCode({
      client: credentials(flow.client.clientId),
      code: flow.code,
      redirectUri: REDIRECT,
      codeVerifier: pkce().verifier
    })
    return { ...flow, tokens, accessToken: Redacted.value(tokens.accessToken), refreshToken: Redacted.value(tokens.refreshToken ?? Redacted.make("")) }
  })

/** Poll until `check` holds, letting real async work (key generation) finish; gives up after 5,000 polls (10+ s). */
export const eventually = <E, R>(check: Effect.Effect<boolean, E, R>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 5_000; i++) {
      if (yield* check) return
      yield* Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 2)))
    }
    return yield* Effect.dieMessage("condition not reached")
  })
