/**
 * `mcp-oauth-store/memory`: every store in process memory, with seed 000's
 * limits and O(1) LRU eviction. For tests, development, and one process that
 * may forget on restart.
 */
export * as MemoryStore from "../layers/memory/index.ts"
