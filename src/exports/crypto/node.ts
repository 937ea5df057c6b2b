/** `mcp-oauth-store/crypto/node`: the `Crypto` service on `node:crypto` (the fastest on Node). */
export * as NodeCrypto from "../../layers/crypto/node.ts"
