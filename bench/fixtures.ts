/** Inputs and helpers the bench modules share. */
import type { AuthorizationCode } from "../src/schema/code.ts"
import type { AccessTokenRecord } from "../src/schema/token.ts"
import type { NewRecord, NewRefreshToken } from "../src/services/TokenStore.ts"

export const accessTokenInput = (n: number): NewRecord<AccessTokenRecord> => ({
  grantId: `grant-${n}`,
  clientId: "client-1",
  subject: `user-${n}`,
  scopes: ["read"],
  resource: "https://mcp.example/mcp"
})

export const codeInput: NewRecord<AuthorizationCode> = {
  grantId: "grant-1",
  clientId: "client-1",
  subject: "user-1",
  redirectUri: "https://app.example/callback",
  codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
  codeChallengeMethod: "S256",
  scopes: ["read"],
  resource: "https://mcp.example/mcp"
}

export const refreshInput: NewRefreshToken = {
  grantId: "grant-rot",
  clientId: "client-1",
  subject: "user-1",
  scopes: ["read"],
  resource: "https://mcp.example/mcp"
}

/** Indices 0..n-1 in a fixed pseudo-random order, so lookups don't walk storage in insertion order. */
export const shuffled = (n: number): Array<number> => {
  const out = Array.from({ length: n }, (_, i) => i)
  let seed = 0x9e3779b9
  for (let i = n - 1; i > 0; i--) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0
    const j = seed % (i + 1)
    const tmp = out[i] as number
    out[i] = out[j] as number
    out[j] = tmp
  }
  return out
}

/** The item at `i`, wrapping around. */
export const at = <A>(items: ReadonlyArray<A>, i: number): A => items[i % items.length] as A
