/**
 * `mcp-oauth-store/crypto/web`: the `Crypto` service on the global WebCrypto
 * (Cloudflare Workers, Deno, browsers). Its envelopes open with `NodeCrypto`
 * and the other way round.
 */
export * as WebCrypto from "../../layers/crypto/web.ts"
