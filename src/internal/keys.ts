/**
 * Record-key namespaces, in one place. Backends use them as storage keys
 * (behind their own prefix) and `Crypto` binds ciphertexts to them, so the
 * same record has the same key everywhere. Patterns follow seed 002
 * (`pending:{id}`, `code:{code}`, `refresh:{token}`, `session:{id}`), with
 * bearer secrets replaced by their lookup hashes.
 */
export const Keys = {
  transaction: (id: string) => `pending:${id}`,
  code: (hash: string) => `code:${hash}`,
  accessToken: (hash: string) => `access:${hash}`,
  refreshToken: (hash: string) => `refresh:${hash}`,
  /** The sealed successor pair of a rotated refresh token, bound to the predecessor. */
  refreshSuccessor: (predecessorHash: string) => `refresh-successor:${predecessorHash}`,
  grant: (id: string) => `grant:${id}`,
  providerTokens: (authorizationId: string, providerId: string) =>
    `provider:${encodeURIComponent(authorizationId)}:${encodeURIComponent(providerId)}`,
  session: (id: string) => `session:${id}`,
  sessionsByKey: (apiKeyHash: string) => `apikey:${apiKeyHash}`,
  client: (clientId: string) => `client:${clientId}`,
  /** The one signing key set (JWKS) all instances share. */
  signingKeys: "jwks:signing-keys"
} as const
