/**
 * `mcp-oauth-store/server/node`: the server on `node:http`: `NodeMcpServer.layer`
 * listens on an address; `NodeMcpServer.toHandler` gives a `(request, response)`
 * handler for your own `node:http` server or an Express-style app. Needs
 * `@effect/platform-node`.
 */
export * as NodeMcpServer from "../../http/node.ts"
