/**
 * Upstream mode's services (seed 002's orchestrated auth): the `Federation`
 * with the upstream provider (and its `UpstreamTokenClient`, over `fetch`),
 * and the single-flight `ProviderTokenRefresher` behind tools that call the
 * provider as the user.
 */
import { FetchHttpClient } from "@effect/platform"
import { Effect, Layer, Option, type Redacted } from "effect"
import { Federation } from "../../oauth/federation.ts"
import { ProviderTokenRefresher } from "../../oauth/providerTokenRefresher.ts"
import * as LocalRefreshLock from "../../oauth/refreshLock.ts"
import type { Crypto } from "../../services/Crypto.ts"
import type { ProviderTokenStore } from "../../services/ProviderTokenStore.ts"
import { RefreshLock } from "../../services/RefreshLock.ts"
import type { UpstreamTokenClient } from "../../services/UpstreamTokenClient.ts"

/** The upstream OAuth 2.0 / OpenID Connect provider users sign in with. */
export interface UpstreamOptions {
  /** The provider's issuer (https; http only on loopback). */
  readonly issuer: string
  /** Our client at the provider. */
  readonly clientId: string
  /** For a confidential client (sent with HTTP Basic). */
  readonly clientSecret?: Redacted.Redacted<string>
  /** What the server asks the provider for (default `openid`). */
  readonly scopes?: ReadonlyArray<string>
  /** Refresh the provider's access token this many seconds before it expires (seed 002's `skewSeconds`, default 60). */
  readonly refreshSkewSeconds?: number
}

/** Our redirect URI at the upstream provider: register this there. */
export const upstreamRedirectUri = (publicUrl: string): string => `${publicUrl}/callback`

/** The federation with the configured upstream (no request is made until the first authorization). */
export const federationLayer = (publicUrl: string, upstream: UpstreamOptions): Layer.Layer<Federation | UpstreamTokenClient> =>
  Federation.layer({
    issuer: upstream.issuer,
    clientId: upstream.clientId,
    clientSecret: upstream.clientSecret,
    scopes: upstream.scopes ?? ["openid"],
    redirectUri: upstreamRedirectUri(publicUrl)
  }).pipe(Layer.provide(FetchHttpClient.layer))

/** The `RefreshLock` in context (a shared backend's), or one for this process. */
const refreshLock: Layer.Layer<RefreshLock, never, Crypto> = Layer.unwrapEffect(
  Effect.map(Effect.serviceOption(RefreshLock), (lock) =>
    Option.match(lock, { onNone: () => LocalRefreshLock.layer, onSome: (service) => Layer.succeed(RefreshLock, service) }))
)

/** Everything upstream mode adds, over the stores' `ProviderTokenStore` (and their `RefreshLock` when shared). */
export const upstreamLayer = (
  publicUrl: string,
  upstream: UpstreamOptions
): Layer.Layer<Federation | UpstreamTokenClient | ProviderTokenRefresher, never, ProviderTokenStore | Crypto> =>
  ProviderTokenRefresher.layer({ skewSeconds: upstream.refreshSkewSeconds ?? 60 }).pipe(
    Layer.provide(refreshLock),
    Layer.provideMerge(federationLayer(publicUrl, upstream))
  )
