/**
 * The server's HTTP API, declared with `@effect/platform`'s HttpApi: the
 * discovery documents (typed success schemas), the OAuth endpoints and the MCP
 * endpoint. The protocol endpoints answer with responses they build
 * themselves (`handleRaw`): OAuth and JSON-RPC define their own error bodies,
 * form encodings and headers, which a generic schema decoder would get wrong.
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { AuthorizationServerMetadata, JwkSet, ProtectedResourceMetadata } from "./metadata.ts"

/** RFC 8414, RFC 9728 (root and `/mcp`-suffixed) and the JWKS. */
export class DiscoveryGroup extends HttpApiGroup.make("discovery", { topLevel: true })
  .add(HttpApiEndpoint.get("authorizationServer", "/.well-known/oauth-authorization-server").addSuccess(AuthorizationServerMetadata))
  .add(HttpApiEndpoint.get("protectedResource", "/.well-known/oauth-protected-resource").addSuccess(ProtectedResourceMetadata))
  .add(HttpApiEndpoint.get("protectedResourceMcp", "/.well-known/oauth-protected-resource/mcp").addSuccess(ProtectedResourceMetadata))
  .add(HttpApiEndpoint.get("jwks", "/.well-known/jwks.json").addSuccess(JwkSet))
{}

/** The authorization server: registration, the front channel (authorize, consent, upstream callback) and the back channel. */
export class OAuthGroup extends HttpApiGroup.make("oauth", { topLevel: true })
  .add(HttpApiEndpoint.post("register", "/register"))
  .add(HttpApiEndpoint.get("authorize", "/authorize"))
  .add(HttpApiEndpoint.post("consent", "/authorize"))
  .add(HttpApiEndpoint.get("upstreamCallback", "/callback"))
  .add(HttpApiEndpoint.post("token", "/token"))
  .add(HttpApiEndpoint.post("revoke", "/revoke"))
  .add(HttpApiEndpoint.post("introspect", "/introspect"))
{}

/** The MCP Streamable HTTP endpoint. */
export class McpGroup extends HttpApiGroup.make("mcp", { topLevel: true })
  .add(HttpApiEndpoint.post("message", "/mcp"))
  .add(HttpApiEndpoint.get("stream", "/mcp"))
  .add(HttpApiEndpoint.del("end", "/mcp"))
{}

export class ServerApi extends HttpApi.make("mcp-oauth-store").add(DiscoveryGroup).add(OAuthGroup).add(McpGroup) {}
