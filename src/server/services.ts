/**
 * The `npm start` application's server, built from its settings: `Crypto`
 * (key from the environment or the key file), the chosen store, and the
 * server piece (`McpServer`) with the example tools (`whoami`, `greet`, and
 * in upstream mode `upstream_userinfo`).
 */
import { Effect, Layer, Option } from "effect"
import * as McpServer from "../http/McpServer.ts"
import { greet } from "../http/mcp/tools/greet.ts"
import { upstreamUserinfo } from "../http/mcp/tools/upstreamUserinfo.ts"
import { whoami } from "../http/mcp/tools/whoami.ts"
import type { RequestLog } from "../http/requestLog.ts"
import { metricsEnabled, type ServerSettings } from "./config.ts"
import { announceToolsChangedOnHangup } from "./hangup.ts"
import { serverCrypto } from "./secrets.ts"
import { upstreamProbe } from "./startupChecks.ts"
import { serverStores, storeLocation } from "./stores.ts"
import * as NodeClientMetadata from "../layers/clientMetadata/node.ts"
import { registerEngineMetrics } from "../internal/metrics.ts"
import { instrument } from "../layers/instrumented/index.ts"

/** The piece's options from the settings (the tools of the mode, sign-in, lifetimes, limits). */
export const serverOptions = (settings: ServerSettings, requestLog?: RequestLog.Service) => {
  const common = {
    publicUrl: settings.publicUrl,
    scopes: settings.scopes,
    signIn: {
      apiKeys: settings.apiKeys,
      ...(Option.isSome(settings.devAutoApprove) ? { autoApprove: settings.devAutoApprove.value } : {})
    },
    scopeDescriptions: settings.scopeDescriptions,
    oauth: {
      accessTokenTtl: `${settings.accessTokenTtlSeconds} seconds`,
      accessTokenFormat: settings.accessTokenFormat,
      dpop: { requireNonce: settings.dpopNonce, proofMaxAge: `${settings.dpopProofMaxAgeSeconds} seconds` }
    },
    maxBodyBytes: settings.maxBodyBytes,
    ...(requestLog === undefined ? {} : { requestLog }),
    limits: settings.limits,
    ...(Option.isSome(settings.trustProxy) ? { trustProxy: settings.trustProxy.value } : {}),
    metrics: settings.metrics._tag === "Main",
    // This instance's own address, for clients that reach it directly rather than through PUBLIC_URL.
    allowedHosts: [`${settings.host.includes(":") ? `[${settings.host}]` : settings.host}:${settings.port}`]
  } as const
  return Option.match(settings.upstream, {
    onNone: () => McpServer.layer({ ...common, tools: [whoami, greet] }),
    onSome: (upstream) =>
      McpServer.layer({
        ...common,
        tools: [whoami, greet, upstreamUserinfo],
        upstream: {
          issuer: upstream.issuer,
          clientId: upstream.clientId,
          ...(Option.isSome(upstream.clientSecret) ? { clientSecret: upstream.clientSecret.value } : {}),
          scopes: upstream.scopes,
          refreshSkewSeconds: upstream.refreshSkewSeconds
        }
      })
  })
}

const logStore = (settings: ServerSettings) =>
  Layer.effectDiscard(
    Effect.flatMap(storeLocation(settings.store, settings.dataDir), (location) =>
      Effect.logInfo("store opened").pipe(Effect.annotateLogs({ store: settings.store, location })))
  )

/**
 * Client ID Metadata Documents, unless `CLIENT_METADATA_DOCUMENTS=off`: the
 * SSRF-safe Node fetcher beside the stores. Without the service the engine
 * treats URL client ids as unknown and the metadata does not advertise support.
 */
const clientMetadataDocuments = (settings: ServerSettings) =>
  settings.clientMetadataDocuments
    ? NodeClientMetadata.layer({ allowLoopback: settings.clientMetadataAllowLoopback })
    : Layer.empty

/** `layer` with metric recording when metrics are on (`METRICS` or OTLP metrics); as it is otherwise. */
const measured = <A, E, R>(settings: ServerSettings, layer: Layer.Layer<A, E, R>): Layer.Layer<A, E, R> =>
  metricsEnabled(settings) ? instrument(layer, { backend: settings.store }) : layer

/**
 * The server's services for the settings given: the piece over the chosen
 * store and `Crypto` (and the metadata-document fetcher), the stores and
 * `Crypto` instrumented when metrics are on, and in upstream mode the
 * startup probe of the upstream issuer.
 */
export const serviceLayer = (settings: ServerSettings, requestLog?: RequestLog.Service) => {
  const crypto = measured(settings, serverCrypto(settings.dataDir, settings.store))
  const stores = Layer.mergeAll(
    measured(settings, serverStores(settings.store, settings.dataDir)),
    logStore(settings),
    clientMetadataDocuments(settings)
  ).pipe(Layer.provideMerge(crypto))
  const engineMetrics = metricsEnabled(settings) ? Layer.effectDiscard(registerEngineMetrics) : Layer.empty
  const server = Layer.mergeAll(serverOptions(settings, requestLog), announceToolsChangedOnHangup, engineMetrics).pipe(
    Layer.provideMerge(stores)
  )
  return Layer.provideMerge(upstreamProbe, server)
}
