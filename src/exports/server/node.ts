/**
 * `mcp-oauth-store/server/node`: the server on `node:http`: `NodeMcpServer.layer`
 * listens on an address; `NodeMcpServer.toHandler` gives a `(request, response)`
 * handler for your own `node:http` server or an Express-style app. Needs
 * `@effect/platform-node`. `NodeClientMetadata` fetches Client ID Metadata
 * Documents on Node, safe against server-side request forgery: provide its
 * layer beside the stores and the server resolves `client_id` URLs.
 */
export * as NodeMcpServer from "../../http/node.ts"
export * as NodeClientMetadata from "../../layers/clientMetadata/node.ts"
export { type AddressPolicy, addressProblem } from "../../layers/clientMetadata/addresses.ts"
