/**
 * The `upstream_userinfo` demo tool of upstream mode: calls the upstream
 * provider's userinfo endpoint with the provider access token kept for the
 * caller's grant, refreshed on the way when it is about to expire (single
 * flight). Written with `McpTool.make`, over the services of upstream mode.
 */
import { Effect, Schema } from "effect"
import { Federation, type FederationError } from "../../../oauth/federation.ts"
import { ProviderTokenRefresher, type ProviderTokenError } from "../../../oauth/providerTokenRefresher.ts"
import * as McpTool from "../McpTool.ts"

/** The scope the upstream tool needs. */
export const UPSTREAM_SCOPE = "mcp:upstream"

/** What the model is told when the call fails: plain words, never a token or a provider's raw answer. */
const describe = (error: ProviderTokenError | FederationError): string => {
  switch (error._tag) {
    case "ReauthorizationRequired":
      return "The upstream authorization has expired or was revoked: sign in again to use this tool."
    case "UpstreamTokenError":
      return error.reason === "Unavailable"
        ? "The upstream identity provider is unavailable: try again later."
        : "The upstream identity provider refused to renew the access token: sign in again."
    case "StoreError":
      return "The server could not read the upstream tokens: try again later."
    case "FederationError":
      return error.reason === "Unavailable"
        ? "The upstream identity provider is unavailable: try again later."
        : error.reason === "Rejected"
        ? "The upstream identity provider refused the access token: sign in again."
        : "The upstream identity provider answered something unexpected."
  }
}

/** `upstream_userinfo`: needs `mcp:upstream`; answers with the userinfo claims as text (JSON) and as `structuredContent`. */
export const upstreamUserinfo: McpTool.McpTool<Federation | ProviderTokenRefresher> = McpTool.make({
  name: "upstream_userinfo",
  title: "Upstream userinfo",
  description: "Calls the upstream identity provider's userinfo endpoint as the signed-in user and returns its claims.",
  output: Schema.Struct({ sub: Schema.String }, Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  scopes: [UPSTREAM_SCOPE],
  annotations: { readOnlyHint: true, openWorldHint: true },
  run: (_input, call) =>
    Effect.gen(function*() {
      const federation = yield* Federation
      const refresher = yield* ProviderTokenRefresher
      return yield* refresher.getValidTokens(call.token.grantId, federation.providerId).pipe(
        Effect.flatMap((tokens) => federation.userinfo(tokens.accessToken)),
        Effect.map(McpTool.json),
        Effect.catchAll((error) =>
          Effect.logWarning("upstream_userinfo failed").pipe(
            Effect.annotateLogs({ error: error._tag, reason: "reason" in error ? error.reason : "" }),
            Effect.zipRight(Effect.fail(new McpTool.ToolFailure({ message: describe(error) })))
          )
        ),
        Effect.annotateLogs({ module: "upstream_userinfo", providerId: federation.providerId })
      )
    })
})
