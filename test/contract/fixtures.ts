import { Redacted } from "effect"
import type { ClientMetadata } from "../../src/schema/client.ts"
import type { AuthorizationCode } from "../../src/schema/code.ts"
import type { ProviderTokens } from "../../src/schema/providerTokens.ts"
import type { SigningKeySet } from "../../src/schema/signingKey.ts"
import type { AccessTokenRecord, Grant, IssuedPair } from "../../src/schema/token.ts"
import type { Transaction } from "../../src/schema/transaction.ts"
import type { NewRecord, NewRefreshToken } from "../../src/services/TokenStore.ts"

/** Records to save, distinct by a suffix so one test can hold several. */

export const transaction = (id: string): NewRecord<Transaction> => ({
  id,
  clientId: "client-1",
  redirectUri: "https://app.example/callback",
  codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
  codeChallengeMethod: "S256",
  scopes: ["read", "write"],
  resource: "https://mcp.example/mcp",
  state: `state-${id}`
})

export const grant = (id: string): NewRecord<Grant> => ({
  id,
  clientId: "client-1",
  subject: "user-1",
  scopes: ["read", "write"],
  resource: "https://mcp.example/mcp"
})

export const code = (grantId: string): NewRecord<AuthorizationCode> => ({
  grantId,
  clientId: "client-1",
  subject: "user-1",
  redirectUri: "https://app.example/callback",
  codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
  codeChallengeMethod: "S256",
  scopes: ["read"],
  resource: "https://mcp.example/mcp",
  authorizationId: `pending-${grantId}`
})

export const accessToken = (grantId: string): NewRecord<AccessTokenRecord> => ({
  grantId,
  clientId: "client-1",
  subject: "user-1",
  scopes: ["read"],
  resource: "https://mcp.example/mcp"
})

export const refreshToken = (grantId: string): NewRefreshToken => ({
  grantId,
  clientId: "client-1",
  subject: "user-1",
  scopes: ["read"],
  resource: "https://mcp.example/mcp"
})

export const pair = (n: string | number): IssuedPair => ({
  refreshToken: Redacted.make(`rt-successor-${n}-${"x".repeat(24)}`),
  accessToken: Redacted.make(`at-successor-${n}-${"y".repeat(24)}`)
})

export const providerTokens = (n: string | number, overrides: Partial<ProviderTokens> = {}): ProviderTokens => ({
  accessToken: Redacted.make(`gho_provider_access_${n}_secret`),
  refreshToken: Redacted.make(`ghr_provider_refresh_${n}_secret`),
  tokenType: "Bearer",
  scopes: ["repo"],
  idTokenClaims: { email: "user@example.com" },
  ...overrides
})

export const clientMetadata: ClientMetadata = {
  redirect_uris: ["https://app.example/callback"],
  token_endpoint_auth_method: "client_secret_basic",
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  client_name: "Example"
}

/** A secret-looking string unlikely to appear anywhere by chance. */
export const secret = (label: string) => `${label}-${"s3cr3t".repeat(4)}`

export type ProviderTokensValue = ProviderTokens

/** A one-key signing key set whose private part carries a recognisable secret. */
export const keySet = (version: number, label: string): SigningKeySet => ({
  version,
  keys: [{
    kid: `kid-${label}`,
    alg: "ES256",
    status: "active",
    publicJwk: { kty: "EC", crv: "P-256", x: `x-${label}`, y: `y-${label}` },
    privateJwk: Redacted.make({ kty: "EC", crv: "P-256", x: `x-${label}`, y: `y-${label}`, d: `private-d-${label}-secret` }),
    createdAt: 0,
    activatedAt: 0
  }]
})
