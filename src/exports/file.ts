/**
 * `mcp-oauth-store/file`: the memory stores persisted to one encrypted file,
 * written crash-safely. Node only.
 */
export * as FileStore from "../layers/file/index.ts"
