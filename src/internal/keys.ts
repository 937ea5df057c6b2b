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
  /** The lease one caller holds while it refreshes a provider token (the `RefreshLock` key). */
  providerRefreshLock: (authorizationId: string, providerId: string) =>
    `provider-refresh-lock:${encodeURIComponent(authorizationId)}:${encodeURIComponent(providerId)}`,
  /** The one signing key set (JWKS) all instances share. */
  signingKeys: "jwks:signing-keys",
  /** A `RateLimiter` bucket's state: the bucket's name, then the lookup hash of the key (an address, a user name). */
  rateLimit: (bucket: string, keyHash: string) => `ratelimit:${bucket}:${keyHash}`,
  /** A `ReplayCache` entry: the scope's name, then the lookup hash of the id (a DPoP `jti`, ...). */
  replay: (scope: string, idHash: string) => `replay:${scope}:${idHash}`,
  /** A resumable SSE stream (`McpEventStore`): its owner hash, sequence, expiry and events, sealed to this key. */
  mcpStream: (streamId: string) => `mcp-stream:${streamId}`,
  /** The pub/sub channel of `McpEventBus` events (behind the backend's prefix). */
  mcpEventChannel: "mcp-events",
  /** The file backend's whole sealed snapshot, bound to its format version. */
  fileSnapshot: (formatVersion: number) => `file:snapshot:v${formatVersion}`,
  // Secondary indexes, for backends that keep them in storage (Redis).
  /** The storage keys issued under a grant (or pending authorization): codes, tokens, provider tokens. */
  grantMembers: (grantId: string) => `grant-members:${grantId}`,
  /** The providers that hold tokens for an authorization id. */
  providerIds: (authorizationId: string) => `provider-ids:${authorizationId}`,
  /** Every session id, ordered by last access (the global session limit's LRU). */
  sessionsByAccess: "sessions:lru",
  /** Every expiring record key, ordered by expiry (what the sweep walks). */
  expiries: "expiry",
  // Secondary indexes as one key per member, for backends that list keys by prefix (Cloudflare KV):
  // no shared value is rewritten, so concurrent writers never lose a member.
  /** One record issued under a grant; `memberKey` is the record's own key. */
  grantMember: (grantId: string, memberKey: string) => `grant-members:${encodeURIComponent(grantId)}:${memberKey}`,
  /** The prefix of every `grantMember` key of a grant. */
  grantMembersOf: (grantId: string) => `grant-members:${encodeURIComponent(grantId)}:`,
  /** One session of an API key (seed 000's `apikey:{hash}` index, a key per session). */
  sessionOfKey: (apiKeyHash: string, id: string) => `apikey:${apiKeyHash}:${id}`,
  /** The prefix of every `sessionOfKey` key of an API key. */
  sessionsOfKey: (apiKeyHash: string) => `apikey:${apiKeyHash}:`,
  /** The prefix of every `providerTokens` key of an authorization id. */
  providerTokensOf: (authorizationId: string) => `provider:${encodeURIComponent(authorizationId)}:`
} as const
