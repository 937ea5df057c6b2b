/**
 * The server as a library piece: an OAuth 2.1 authorization server and an MCP
 * endpoint serving both protocol eras, over the stores and `Crypto` you
 * provide, with your tools. Mount it three ways:
 *
 * - in an `@effect/platform` application: `httpApp` (or `router`) with
 *   `layer(options)` providing what it needs;
 * - as a web-standard `fetch` handler (Workers, Bun, Deno, Hono):
 *   `toWebHandler(options, stores)`;
 * - as a `node:http` / Express-style handler: `mcp-oauth-store/server/node`.
 *
 * Its settings are a typed value; nothing is read from the environment.
 */
import type { HttpApp } from "@effect/platform"
import { HttpApp as App } from "@effect/platform"
import { Context, type Duration, Duration as D, Effect, Layer, Scope } from "effect"
import { type InvalidOAuthOptions, OAuthConfig, type OAuthOptions } from "../oauth/config.ts"
import { DpopKeyCache } from "../oauth/dpop.ts"
import type { Federation } from "../oauth/federation.ts"
import type { ProviderTokenRefresher } from "../oauth/providerTokenRefresher.ts"
import * as StoredJwks from "../oauth/jwks.ts"
import { isLoopbackHost } from "../oauth/loopback.ts"
import type { ClientStore } from "../services/ClientStore.ts"
import type { Crypto } from "../services/Crypto.ts"
import type { Jwks } from "../services/Jwks.ts"
import type { ProviderTokenStore } from "../services/ProviderTokenStore.ts"
import type { RateLimiter } from "../services/RateLimiter.ts"
import type { ReplayCache } from "../services/ReplayCache.ts"
import type { SessionStore } from "../services/SessionStore.ts"
import type { SigningKeyStore } from "../services/SigningKeyStore.ts"
import type { StoreError } from "../services/StoreError.ts"
import type { TokenStore } from "../services/TokenStore.ts"
import type { UpstreamTokenClient } from "../services/UpstreamTokenClient.ts"
import { ScopeDescriptions } from "./consent/page.ts"
import { SignIn, signInLayer, type SignInOptions } from "./consent/signIn.ts"
import { McpEndpointConfig } from "./mcp/config.ts"
import type { McpTool } from "./mcp/McpTool.ts"
import { McpTools, type ToolOutcome } from "./mcp/tool.ts"
import { endpointUrls } from "./metadata.ts"
import { PeerAddress, type TrustProxy } from "./clientAddress.ts"
import { type HttpLimits, limitsLayer, type LimitsOptions } from "./limits.ts"
import { loggerRequestLog, RequestLog } from "./requestLog.ts"
import { MetricsExposition } from "./metrics.ts"
import { httpApp as app, routes } from "./router.ts"
import { upstreamLayer, type UpstreamOptions } from "./upstream/layer.ts"
import packageJson from "../../package.json" with { type: "json" }

/** The server's settings. */
export interface McpServerOptions<R = never> {
  /** The issuer and base of every URL the server publishes (https; http only on a loopback host). No trailing slash. */
  readonly publicUrl: string
  /** The tools `/mcp` serves. */
  readonly tools?: ReadonlyArray<McpTool<R>>
  /** The scopes the server knows; default: every scope the tools require. */
  readonly scopes?: ReadonlyArray<string>
  /** How users sign in on the consent page (API keys), or the development auto-approval. */
  readonly signIn?: SignInOptions
  /** What the consent page says each scope allows (scope -> description). */
  readonly scopeDescriptions?: Readonly<Record<string, string>>
  /** Sign users in at an upstream OAuth / OpenID Connect provider instead of the consent page. */
  readonly upstream?: UpstreamOptions
  /** The OAuth engine's lifetimes, token format and claims hook (the issuer, resources, scopes and input bounds come from above). */
  readonly oauth?: Omit<OAuthOptions, "issuer" | "resources" | "scopesSupported" | "clientMetadataLimits" | "authorizationRequestLimits">
  /** The signing keys: algorithm, rotation. */
  readonly jwks?: StoredJwks.JwksOptions
  /** Larger request bodies get 413 (default 1 MiB). */
  readonly maxBodyBytes?: number
  /**
   * What anonymous callers may do and store: registration, authorization
   * requests and sign-in failures, per client address and overall (every
   * limit has a default; see `LimitsOptions`).
   */
  readonly limits?: LimitsOptions
  /**
   * Proxies trusted to report the client's address in `X-Forwarded-For`
   * (default none: the socket's peer is the client).
   */
  readonly trustProxy?: TrustProxy
  /** The implementation's name and version in `serverInfo` (default this package's). */
  readonly serverInfo?: { readonly name: string; readonly version: string }
  /** Instructions for the model about this server. */
  readonly instructions?: string
  /** How long a multi-round tool's state stays valid between rounds (default 10 minutes). */
  readonly requestStateTtl?: Duration.DurationInput
  /** Extra origins a browser may call `/mcp` from (default: only the public URL's, and its loopback aliases). */
  readonly allowedOrigins?: ReadonlyArray<string>
  /** Extra `Host` values `/mcp` answers to (default: the public URL's host, and its loopback aliases). */
  readonly allowedHosts?: ReadonlyArray<string>
  /** Where the one log line per request goes (default: Effect's logger, `INFO request` with annotations). */
  readonly requestLog?: RequestLog.Service
  /**
   * Answer `GET /metrics` with the process's metrics in the Prometheus text
   * format (default off: a 404). Anyone who reaches the server can read them;
   * `Metrics.instrument` your stores for the store series.
   */
  readonly metrics?: boolean
}

/** What the server's handlers need from you: the stores (with the `RateLimiter` the limits count in and the `ReplayCache` DPoP proofs go through) and `Crypto`. */
export type McpServerRequirements =
  | TokenStore
  | SessionStore
  | ProviderTokenStore
  | ClientStore
  | SigningKeyStore
  | RateLimiter
  | ReplayCache
  | Crypto

/** What `layer` provides to the handlers. */
export type McpServerServices =
  | OAuthConfig
  | Jwks
  | DpopKeyCache
  | SignIn
  | ScopeDescriptions
  | McpTools
  | McpEndpointConfig
  | HttpLimits
  | RequestLog
  | MetricsExposition

/** An object without its `undefined` members (for options under `exactOptionalPropertyTypes`). */
const definedOnly = <A extends object>(value: A): { [K in keyof A]?: Exclude<A[K], undefined> } =>
  Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as { [K in keyof A]?: Exclude<A[K], undefined> }

/** Loopback names of one host: a page served from any of them is ours. */
const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"]

/** The hosts (`host[:port]`) and origins `/mcp` accepts, from the public URL and configured extras. */
const rebindingAllowances = (publicUrl: string, origins: ReadonlyArray<string>, hosts: ReadonlyArray<string>) => {
  const url = new URL(publicUrl)
  const port = url.port === "" ? "" : `:${url.port}`
  const names = isLoopbackHost(url.hostname) ? [url.hostname, ...LOOPBACK_NAMES] : [url.hostname]
  const allowedHosts = new Set([...names.map((name) => `${name}${port}`), ...hosts].map((h) => h.toLowerCase()))
  const allowedOrigins = new Set([...names.map((name) => `${url.protocol}//${name}${port}`), ...origins].map((o) => o.toLowerCase()))
  return { allowedHosts, allowedOrigins }
}

/** Every scope the tools require, in the order they first appear. */
const toolScopes = (tools: ReadonlyArray<McpTool<unknown>>): ReadonlyArray<string> => [...new Set(tools.flatMap((tool) => tool.requiredScopes))]

/**
 * Whether a request's context already holds every service of `context`, the
 * same instances (the server's own runtime does): a call can run in it as
 * is. The layer's `Scope` is not compared: each layer has its own, and both
 * live as long as the server. Remembered per context object, so a request
 * pays one lookup.
 */
const heldBy = <R>(context: Context.Context<R>): (current: Context.Context<never>) => boolean => {
  const known = new WeakMap<Context.Context<never>, boolean>()
  return (current) => {
    let holds = known.get(current)
    if (holds === undefined) {
      holds = true
      for (const [key, service] of context.unsafeMap) {
        if (key !== Scope.Scope.key && current.unsafeMap.get(key) !== service) {
          holds = false
          break
        }
      }
      known.set(current, holds)
    }
    return holds
  }
}

/**
 * The tools with their requirements provided from the layer's context: a
 * call runs with exactly the services the layer was given, the way the
 * tool's type says it needs nothing else. When the request's context
 * already holds those same services, the call runs in it without a switch.
 */
const toolsLayer = <R>(tools: ReadonlyArray<McpTool<R>>): Layer.Layer<McpTools, never, R> =>
  Layer.effect(
    McpTools,
    Effect.map(Effect.context<R>(), (context) => {
      const holds = heldBy(context)
      return tools.map((tool) => ({
        ...tool,
        call: (args, call) =>
          Effect.contextWithEffect((current: Context.Context<never>) =>
            // `holds` checked that `current` has every service of `R`: the requirement is met.
            holds(current) ? tool.call(args, call) as Effect.Effect<ToolOutcome> : Effect.mapInputContext(tool.call(args, call), () => context))
      }))
    })
  )

/** The services upstream mode provides, which tools may use (`Federation`, `ProviderTokenRefresher`). */
export type UpstreamServices = Federation | UpstreamTokenClient | ProviderTokenRefresher

/** Why `layer` could not be built: the signing keys could not be loaded, or the options are unusable. */
export type McpServerError = StoreError | InvalidOAuthOptions

/**
 * Everything the handlers need, over your stores and `Crypto` (and the
 * services your tools need, `R`): the OAuth engine's settings, the signing
 * keys (persisted in the store, rotated on schedule), sign-in, the tools, and
 * with `upstream`, the federation and the provider-token refresher (which
 * tools may use).
 */
export function layer<R = never>(
  options: McpServerOptions<R> & { readonly upstream: UpstreamOptions }
): Layer.Layer<McpServerServices | UpstreamServices, McpServerError, McpServerRequirements | Exclude<R, UpstreamServices>>
export function layer<R = never>(options: McpServerOptions<R>): Layer.Layer<McpServerServices, McpServerError, McpServerRequirements | R>
export function layer<R = never>(
  options: McpServerOptions<R>
): Layer.Layer<McpServerServices, McpServerError, McpServerRequirements | R> {
  const publicUrl = options.publicUrl.replace(/\/+$/, "")
  const urls = endpointUrls(publicUrl)
  const tools = options.tools ?? []
  const scopes = options.scopes ?? toolScopes(tools)
  const { authorize: authorizeLimits = {}, register: registerLimits = {} } = options.limits ?? {}
  const oauth = OAuthConfig.layer({
    ...options.oauth,
    issuer: urls.issuer,
    resources: [urls.mcp, urls.issuer],
    scopesSupported: scopes,
    clientMetadataLimits: definedOnly({
      maxTextLength: registerLimits.maxTextLength,
      maxUriLength: registerLimits.maxUriLength,
      maxScopeLength: registerLimits.maxScopeLength,
      maxRedirectUris: registerLimits.maxRedirectUris,
      maxContacts: registerLimits.maxContacts
    }),
    authorizationRequestLimits: definedOnly({
      maxStateLength: authorizeLimits.maxStateLength,
      maxParameterLength: authorizeLimits.maxParameterLength
    })
  })
  const endpoint = Layer.succeed(McpEndpointConfig, {
    serverInfo: options.serverInfo ?? { name: packageJson.name, version: packageJson.version },
    ...(options.instructions === undefined ? {} : { instructions: options.instructions }),
    requestStateTtl: D.toMillis(D.decode(options.requestStateTtl ?? "10 minutes")),
    keepAlive: 15_000,
    scopes: toolScopes(tools),
    ...rebindingAllowances(publicUrl, options.allowedOrigins ?? [], options.allowedHosts ?? [])
  })
  const limits = Layer.merge(
    limitsLayer(definedOnly({ limits: options.limits, maxBodyBytes: options.maxBodyBytes, trustProxy: options.trustProxy })),
    Layer.succeed(RequestLog, options.requestLog ?? loggerRequestLog)
  )
  const consent = Layer.succeed(ScopeDescriptions, options.scopeDescriptions ?? {})
  const metrics = Layer.succeed(MetricsExposition, { enabled: options.metrics === true })
  const base = Layer.mergeAll(
    oauth,
    StoredJwks.layer(options.jwks),
    DpopKeyCache.layer(),
    signInLayer(options.signIn ?? {}),
    consent,
    endpoint,
    Layer.provide(limits, oauth),
    metrics
  )
  if (options.upstream === undefined) return Layer.merge(base, toolsLayer(tools))
  const upstream = upstreamLayer(publicUrl, options.upstream)
  return Layer.mergeAll(base, Layer.provideMerge(toolsLayer(tools), upstream))
}

/** The routes of the server, for `HttpRouter.concat` / `HttpRouter.mount` in your own router. */
export const router = routes

/** The whole server as an `HttpApp`: the routes, CORS, the body limit, error answers and a log line per request. */
export const httpApp: HttpApp.Default<never, McpServerServices | McpServerRequirements> = app

/** What a `fetch` host knows about a request beyond the web `Request`. */
export interface RequestInfo {
  /**
   * The peer's address (Deno's `info.remoteAddr.hostname`, Bun's
   * `server.requestIP(request)`, Cloudflare's `CF-Connecting-IP`): the
   * per-address limits count under it. Without it every request shares the
   * budget of one unknown address.
   */
  readonly remoteAddress?: string | undefined
}

/**
 * The server as a web-standard `fetch` handler over a layer of stores and
 * `Crypto`: what Cloudflare Workers, Bun, Deno and Hono call; pass the
 * peer's address as `info.remoteAddress` (a web `Request` has none). `dispose`
 * closes the stores (and stops the key-rotation fiber).
 */
export const toWebHandler = <R = never, E = never>(
  options: McpServerOptions<R>,
  stores: Layer.Layer<McpServerRequirements | R, E>
): {
  readonly handler: (request: Request, info?: RequestInfo) => Promise<Response>
  readonly dispose: () => Promise<void>
} => {
  const web = App.toWebHandlerLayer(httpApp, layer<R>(options).pipe(Layer.provideMerge(stores)))
  return {
    handler: (request, info) =>
      info?.remoteAddress === undefined ? web.handler(request) : web.handler(request, Context.make(PeerAddress, info.remoteAddress)),
    dispose: web.dispose
  }
}
