/**
 * Every service the server's handlers use, built from the settings: `Crypto`
 * (key from the environment or the key file), the chosen store, the signing
 * keys (persisted in the store, shared by every instance), the OAuth engine's
 * settings, and the MCP tools (with upstream mode, its federation too).
 */
import { Effect, Layer, Option } from "effect"
import * as StoredJwks from "../oauth/jwks.ts"
import { OAuthConfig } from "../oauth/config.ts"
import { SignInLive } from "../http/consent/signIn.ts"
import { localTools } from "../http/mcp/tools/whoami.ts"
import { upstreamLayer } from "../http/upstream/layer.ts"
import { endpointUrls } from "../http/metadata.ts"
import type { ServerSettings } from "./config.ts"
import { serverCrypto } from "./secrets.ts"
import { serverStores, storeLocation } from "./stores.ts"

/** The OAuth engine's settings: we are the issuer; tokens are for the MCP endpoint (or the server as a whole). */
const oauthConfig = (settings: ServerSettings) => {
  const urls = endpointUrls(settings.publicUrl)
  return OAuthConfig.layer({
    issuer: urls.issuer,
    resources: [urls.mcp, urls.issuer],
    scopesSupported: settings.scopes,
    accessTokenTtl: `${settings.accessTokenTtlSeconds} seconds`,
    accessTokenFormat: settings.accessTokenFormat
  })
}

const logStore = (settings: ServerSettings) =>
  Layer.effectDiscard(
    Effect.flatMap(storeLocation(settings.store, settings.dataDir), (location) =>
      Effect.logInfo("store opened").pipe(Effect.annotateLogs({ store: settings.store, location })))
  )

/** The MCP tools, and in upstream mode the federation and the provider-token refresher behind its tool. */
const modeServices = (settings: ServerSettings) =>
  Option.match(settings.upstream, {
    onNone: () => localTools,
    onSome: (upstream) => upstreamLayer(settings, upstream)
  })

/** The services of the server, for the settings given. */
export const serviceLayer = (settings: ServerSettings) => {
  const crypto = serverCrypto(settings.dataDir, settings.store)
  const stores = serverStores(settings.store, settings.dataDir).pipe(Layer.provideMerge(crypto))
  const engine = Layer.mergeAll(StoredJwks.layer(), oauthConfig(settings), logStore(settings)).pipe(Layer.provideMerge(stores))
  return Layer.mergeAll(modeServices(settings), SignInLive).pipe(Layer.provideMerge(engine))
}
