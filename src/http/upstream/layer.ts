/**
 * Upstream mode's services, from the server's settings: the `Federation`
 * with the upstream (and its `UpstreamTokenClient`, over `fetch`), the
 * single-flight `ProviderTokenRefresher` (seed 002's `skewSeconds` from
 * `UPSTREAM_REFRESH_SKEW_SECONDS`) and the tool list with `upstream_userinfo`.
 */
import { FetchHttpClient } from "@effect/platform"
import { Layer, Option } from "effect"
import { Federation } from "../../oauth/federation.ts"
import { ProviderTokenRefresher } from "../../oauth/providerTokenRefresher.ts"
import type { ServerSettings, UpstreamSettings } from "../../server/config.ts"
import type { ProviderTokenStore } from "../../services/ProviderTokenStore.ts"
import type { RefreshLock } from "../../services/RefreshLock.ts"
import type { UpstreamTokenClient } from "../../services/UpstreamTokenClient.ts"
import type { McpTools } from "../mcp/tool.ts"
import { upstreamTools } from "../mcp/tools/upstreamUserinfo.ts"

/** Our redirect URI at the upstream provider: register this there. */
export const upstreamRedirectUri = (publicUrl: string): string => `${publicUrl}/callback`

/** The federation with the configured upstream (no request is made until the first authorization). */
export const federationLayer = (
  publicUrl: string,
  upstream: UpstreamSettings
): Layer.Layer<Federation | UpstreamTokenClient> =>
  Federation.layer({
    issuer: upstream.issuer,
    clientId: upstream.clientId,
    clientSecret: Option.getOrUndefined(upstream.clientSecret),
    scopes: upstream.scopes,
    redirectUri: upstreamRedirectUri(publicUrl)
  }).pipe(Layer.provide(FetchHttpClient.layer))

/** Everything upstream mode adds, over the stores' `ProviderTokenStore` and `RefreshLock`. */
export const upstreamLayer = (
  settings: Pick<ServerSettings, "publicUrl">,
  upstream: UpstreamSettings
): Layer.Layer<McpTools | Federation | UpstreamTokenClient | ProviderTokenRefresher, never, ProviderTokenStore | RefreshLock> =>
  upstreamTools.pipe(
    Layer.provideMerge(ProviderTokenRefresher.layer({ skewSeconds: upstream.refreshSkewSeconds })),
    Layer.provideMerge(federationLayer(settings.publicUrl, upstream))
  )
