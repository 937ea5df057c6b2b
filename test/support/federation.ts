/**
 * Wiring for the federation tests: the OAuth engine (memory stores, test
 * settings) with a `Federation` to a real upstream over `fetch`, the
 * in-process `RefreshLock` and the single-flight `ProviderTokenRefresher`;
 * every request federation makes is recorded. Plus a loopback HTTP server
 * with fixed answers, for upstreams that misbehave.
 */
import { FetchHttpClient, HttpClient } from "@effect/platform"
import { Effect, Layer, Redacted } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Federation } from "../../src/oauth/federation.ts"
import { ProviderTokenRefresher } from "../../src/oauth/providerTokenRefresher.ts"
import * as RefreshLockMemory from "../../src/oauth/refreshLock.ts"
import { engine } from "../oauth/fixtures.ts"

/** Our redirect URI at the upstream; nothing listens there: the tests stop the browser at it. */
export const CALLBACK = "http://127.0.0.1:8787/callback"

/** What the upstream is asked for: OIDC, a name, and refresh tokens. */
export const UPSTREAM_SCOPES = ["openid", "profile", "offline_access"]

export interface FederationTestOptions {
  readonly issuer: string
  readonly clientId?: string
  readonly clientSecret?: string
  /** Refresh this long before expiry (default 0: only once the provider's access token has expired). */
  readonly skewSeconds?: number
  /** Every URL federation requests is pushed here. */
  readonly seen?: Array<string>
}

/** `fetch` with every request's URL recorded. */
const recordingHttp = (seen: Array<string>) =>
  Layer.effect(
    HttpClient.HttpClient,
    Effect.map(HttpClient.HttpClient, (client) => HttpClient.tapRequest(client, (request) => Effect.sync(() => seen.push(request.url))))
  ).pipe(Layer.provide(FetchHttpClient.layer))

/** The engine with federation to `issuer`, one fresh build per test. */
export const federationEngine = (options: FederationTestOptions) => {
  const federation = Federation.layer({
    issuer: options.issuer,
    clientId: options.clientId ?? "mcp-upstream-client",
    clientSecret: Redacted.make(options.clientSecret ?? "upstream-client-secret-0123456789"),
    scopes: UPSTREAM_SCOPES,
    redirectUri: CALLBACK
  }).pipe(Layer.provide(recordingHttp(options.seen ?? [])))
  return ProviderTokenRefresher.layer({ skewSeconds: options.skewSeconds ?? 0 }).pipe(
    Layer.provideMerge(Layer.mergeAll(federation, RefreshLockMemory.layer)),
    Layer.provideMerge(engine())
  )
}

/** Run a test body over a fresh federation engine. */
export const withFederation = (options: FederationTestOptions) =>
<A, E, R>(body: Effect.Effect<A, E, R>) =>
  Effect.scoped(Effect.provide(body, Layer.fresh(federationEngine(options)))) as Effect.Effect<A, unknown, never>

export interface Reply {
  readonly status: number
  readonly body: string
}

/**
 * A loopback HTTP server answering each path with what `replies` holds at the
 * time of the request (404 otherwise); `{origin}` in a body becomes its own
 * origin. Stopped with the scope.
 */
export const staticServer = (replies: Map<string, Reply>) =>
  Effect.acquireRelease(
    Effect.async<{ readonly origin: string; readonly close: () => void }>((resume) => {
      let origin = ""
      const server = createServer((req, res) => {
        const reply = replies.get((req.url ?? "/").split("?")[0] ?? "/")
        res.writeHead(reply?.status ?? 404, { "content-type": "application/json" })
        res.end((reply?.body ?? "{\"error\":\"not_found\"}").replaceAll("{origin}", origin))
      })
      server.listen(0, "127.0.0.1", () => {
        origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
        resume(Effect.succeed({ origin, close: () => server.close() }))
      })
    }),
    (server) => Effect.sync(server.close)
  )

/** A metadata document naming `{origin}` (the static server) as its issuer and endpoints. */
export const metadataDocument = (overrides: Record<string, unknown> = {}): string =>
  JSON.stringify({
    issuer: "{origin}",
    authorization_endpoint: "{origin}/authorize",
    token_endpoint: "{origin}/token",
    userinfo_endpoint: "{origin}/userinfo",
    code_challenge_methods_supported: ["S256"],
    ...overrides
  })
