/**
 * `mcp-oauth-store/server`: the server as a library piece: an OAuth 2.1
 * authorization server and an MCP endpoint serving protocol revision
 * 2026-07-28 (stateless) and the 2025 revisions (sessions in the
 * `SessionStore`), over your stores, with your tools. Mount it in an
 * `@effect/platform` application (`McpServer.httpApp` + `McpServer.layer`),
 * or as a web-standard `fetch` handler (`McpServer.toWebHandler`). No Node
 * built-in: for `node:http`, see `mcp-oauth-store/server/node`.
 */
export * as McpServer from "../http/McpServer.ts"
export * as McpTool from "../http/mcp/McpTool.ts"
export { metricsApp, prometheusText } from "../http/metrics.ts"
export type { ApiKeyUser, SignInOptions } from "../http/consent/signIn.ts"
export type { TrustProxy } from "../http/clientAddress.ts"
export type { LimitsOptions, RateLimit } from "../http/limits.ts"
export type { UpstreamOptions } from "../http/upstream/layer.ts"
