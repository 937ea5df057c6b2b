/**
 * The `upstream_userinfo` demo tool of upstream mode: calls the upstream
 * provider's userinfo endpoint with the provider access token kept for the
 * caller's grant, refreshed on the way when it is about to expire (single
 * flight). Also `upstreamTools`, the tool list of upstream mode.
 */
import { Effect, Layer } from "effect"
import { Federation, type FederationError } from "../../../oauth/federation.ts"
import { ProviderTokenRefresher, type ProviderTokenError } from "../../../oauth/providerTokenRefresher.ts"
import { UPSTREAM_SCOPE } from "../../../server/config.ts"
import { type McpTool, McpTools, type ToolResult } from "../tool.ts"
import { whoami } from "./whoami.ts"

const failure = (text: string): ToolResult => ({ content: [{ type: "text", text }], isError: true })

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
export const makeUpstreamUserinfo: Effect.Effect<McpTool, never, Federation | ProviderTokenRefresher> = Effect.gen(function*() {
  const federation = yield* Federation
  const refresher = yield* ProviderTokenRefresher
  return {
    name: "upstream_userinfo",
    title: "Upstream userinfo",
    description: "Calls the upstream identity provider's userinfo endpoint as the signed-in user and returns its claims.",
    inputSchema: { type: "object", properties: {}, additionalProperties: false },
    outputSchema: { type: "object", properties: { sub: { type: "string" } }, required: ["sub"] },
    requiredScopes: [UPSTREAM_SCOPE],
    call: ({ token }) =>
      refresher.getValidTokens(token.grantId, federation.providerId).pipe(
        Effect.flatMap((tokens) => federation.userinfo(tokens.accessToken)),
        Effect.map((claims): ToolResult => ({ content: [{ type: "text", text: JSON.stringify(claims) }], structuredContent: claims })),
        Effect.catchAll((error) =>
          Effect.logWarning("upstream_userinfo failed").pipe(
            Effect.annotateLogs({ error: error._tag, reason: "reason" in error ? error.reason : "" }),
            Effect.as(failure(describe(error)))
          )
        ),
        Effect.catchAllDefect(() =>
          Effect.logError("upstream_userinfo failed unexpectedly").pipe(
            Effect.as(failure("The upstream call failed unexpectedly."))
          )
        ),
        Effect.annotateLogs({ module: "upstream_userinfo", providerId: federation.providerId })
      )
  }
})

/** The tools of upstream mode: `whoami` and `upstream_userinfo`. */
export const upstreamTools: Layer.Layer<McpTools, never, Federation | ProviderTokenRefresher> = Layer.effect(
  McpTools,
  Effect.map(makeUpstreamUserinfo, (tool) => [whoami, tool])
)
