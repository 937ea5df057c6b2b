/**
 * The discovery documents: authorization server metadata (RFC 8414),
 * protected resource metadata (RFC 9728) for the MCP endpoint, and the JWKS.
 */
import { Effect, Schema } from "effect"
import { clientMetadataDocumentsSupported } from "../oauth/clientMetadataDocument.ts"
import { OAuthConfig } from "../oauth/config.ts"
import { formatScope } from "../oauth/scopes.ts"
import { Jwks } from "../services/Jwks.ts"

/** The MCP endpoint's path; its URL is the resource tokens are issued for. */
export const MCP_PATH = "/mcp"

/** The RFC 9728 metadata URL of the resource at `resourcePath`: the path-suffixed well-known form. */
export const resourceMetadataUrl = (publicUrl: string, resourcePath: string = MCP_PATH): string =>
  `${publicUrl}/.well-known/oauth-protected-resource${resourcePath}`

/** Where the server's endpoints live, from its public URL. */
export const endpointUrls = (publicUrl: string) => ({
  issuer: publicUrl,
  authorization: `${publicUrl}/authorize`,
  token: `${publicUrl}/token`,
  registration: `${publicUrl}/register`,
  revocation: `${publicUrl}/revoke`,
  introspection: `${publicUrl}/introspect`,
  jwks: `${publicUrl}/.well-known/jwks.json`,
  callback: `${publicUrl}/callback`,
  mcp: `${publicUrl}${MCP_PATH}`,
  resourceMetadata: resourceMetadataUrl(publicUrl)
})

const Strings = Schema.Array(Schema.String)

/** RFC 8414 §2, the members this server publishes. */
export const AuthorizationServerMetadata = Schema.Struct({
  issuer: Schema.String,
  authorization_endpoint: Schema.String,
  token_endpoint: Schema.String,
  registration_endpoint: Schema.String,
  revocation_endpoint: Schema.String,
  introspection_endpoint: Schema.String,
  jwks_uri: Schema.String,
  scopes_supported: Strings,
  response_types_supported: Strings,
  response_modes_supported: Strings,
  grant_types_supported: Strings,
  code_challenge_methods_supported: Strings,
  token_endpoint_auth_methods_supported: Strings,
  revocation_endpoint_auth_methods_supported: Strings,
  introspection_endpoint_auth_methods_supported: Strings,
  authorization_response_iss_parameter_supported: Schema.Boolean,
  /** draft-ietf-oauth-client-id-metadata-document: a `client_id` may be an https URL naming the client's metadata document. */
  client_id_metadata_document_supported: Schema.Boolean,
  /** RFC 9449 §5.1: DPoP is supported, with proofs signed by these algorithms. */
  dpop_signing_alg_values_supported: Strings
})

/** RFC 9728 §2. */
export const ProtectedResourceMetadata = Schema.Struct({
  resource: Schema.String,
  authorization_servers: Strings,
  scopes_supported: Strings,
  bearer_methods_supported: Strings,
  resource_name: Schema.String,
  /** RFC 9728 §2: the algorithms DPoP proofs to the resource may use. */
  dpop_signing_alg_values_supported: Strings,
  /** RFC 9728 §2: bearer tokens are accepted too; DPoP is the client's choice. */
  dpop_bound_access_tokens_required: Schema.Boolean
})

/** RFC 7517 §5: public keys only. */
export const JwkSet = Schema.Struct({ keys: Schema.Array(Schema.Record({ key: Schema.String, value: Schema.Unknown })) })

const AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

/** The scopes published in the metadata: the configured ones (none when any scope is accepted). */
const publishedScopes = (config: OAuthConfig["Type"]): ReadonlyArray<string> => config.scopesSupported ?? []

/**
 * RFC 8414 metadata of this authorization server; `client_id_metadata_document_supported`
 * when metadata documents are resolved; DPoP's algorithms (RFC 9449 §5.1).
 */
export const authorizationServerMetadata = Effect.gen(function*() {
  const config = yield* OAuthConfig
  const urls = endpointUrls(config.issuer)
  const metadata: typeof AuthorizationServerMetadata.Type = {
    issuer: urls.issuer,
    authorization_endpoint: urls.authorization,
    token_endpoint: urls.token,
    registration_endpoint: urls.registration,
    revocation_endpoint: urls.revocation,
    introspection_endpoint: urls.introspection,
    jwks_uri: urls.jwks,
    scopes_supported: publishedScopes(config),
    response_types_supported: ["code"],
    response_modes_supported: ["query"],
    grant_types_supported: ["authorization_code", "refresh_token"],
    code_challenge_methods_supported: ["S256"],
    token_endpoint_auth_methods_supported: AUTH_METHODS,
    revocation_endpoint_auth_methods_supported: AUTH_METHODS,
    introspection_endpoint_auth_methods_supported: AUTH_METHODS,
    authorization_response_iss_parameter_supported: true,
    client_id_metadata_document_supported: yield* clientMetadataDocumentsSupported,
    dpop_signing_alg_values_supported: config.dpop.algorithms
  }
  return metadata
})

/**
 * The protected resource metadata at the `/mcp`-suffixed well-known path
 * (`mcp`: the MCP endpoint) or at the root one. The root document is the
 * server as a whole: its `resource` is the public URL, as RFC 9728 §3.3
 * requires of the document at that well-known path (the identifier it was
 * built from); tokens for it are accepted at `/mcp` too, and a client that
 * writes it with a trailing slash (the MCP Inspector) names the same
 * resource (`resolveResource`).
 */
export const protectedResourceMetadata = (which: "mcp" | "root") => Effect.map(OAuthConfig, (config): typeof ProtectedResourceMetadata.Type => {
  const urls = endpointUrls(config.issuer)
  const scopes = publishedScopes(config)
  return {
    resource: which === "mcp" ? urls.mcp : urls.issuer,
    authorization_servers: [urls.issuer],
    scopes_supported: scopes,
    bearer_methods_supported: ["header"],
    resource_name: `MCP server at ${urls.mcp} (scopes: ${formatScope(scopes)})`,
    dpop_signing_alg_values_supported: config.dpop.algorithms,
    dpop_bound_access_tokens_required: false
  }
})

/** The public signing keys (RFC 7517). */
export const jwkSet = Effect.flatMap(Jwks, (jwks) => jwks.publicJwks)
