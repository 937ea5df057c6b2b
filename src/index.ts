/**
 * mcp-oauth-store: token and session stores for OAuth-protected MCP servers.
 *
 * Write code against the services (`TokenStore`, `SessionStore`,
 * `ProviderTokenStore`, `ClientStore`, `Crypto`); pick a backend by providing
 * its layer (`MemoryStore.layer()`), and a `Crypto` layer (`NodeCrypto`,
 * `WebCrypto`).
 */
export * from "./errors/index.ts"
export * from "./schema/index.ts"
export * from "./services/index.ts"
export * as MemoryStore from "./layers/memory/index.ts"
export { NodeCrypto, WebCrypto, generateKey, keyringConfig, type KeyringOptions } from "./layers/crypto/index.ts"
export * as FileStore from "./layers/file/index.ts"
/** The OAuth engine: flows, verification, signing keys, upstream provider tokens (no HTTP). */
export * from "./oauth/index.ts"
export * as KvStore from "./layers/kv/index.ts"
export * as Tiered from "./layers/tiered/index.ts"
export * as SqliteStore from "./layers/sqlite/index.ts"
export * as RedisStore from "./layers/redis/index.ts"
