/**
 * Upstream federation (seed 002's orchestrated auth) in the engine, against a
 * real oidc-provider on loopback: discovery, our PKCE and state at the
 * upstream, the callback (tampered state refused, upstream refusal sent on to
 * the client), provider tokens stored sealed under the pending authorization
 * and moved to the grant by our code exchange, and their refresh once the
 * provider's access token has really expired.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Option, Redacted } from "effect"
import { createHash } from "node:crypto"
import { verifyAccessToken } from "../../src/oauth/accessTokens.ts"
import { AuthorizationErrorRedirect } from "../../src/oauth/authorize.ts"
import {
  completeUpstreamAuthorization,
  discoveryUrls,
  Federation,
  FederationError,
  startUpstreamAuthorization,
  type UpstreamCallback
} from "../../src/oauth/federation.ts"
import { ProviderTokenRefresher } from "../../src/oauth/providerTokenRefresher.ts"
import { exchangeCode } from "../../src/oauth/tokenEndpoint.ts"
import { ProviderTokenStore } from "../../src/services/ProviderTokenStore.ts"
import { RawStorage } from "../../src/services/RawStorage.ts"
import { TokenStore } from "../../src/services/TokenStore.ts"
import { CALLBACK, metadataDocument, type Reply, staticServer, UPSTREAM_SCOPES, withFederation } from "../support/federation.ts"
import { displayName, driveInteraction, type OidcProvider, startOidcProvider } from "../support/oidcProvider.ts"
import { authorizationRequest, credentials, ISSUER, pkce, REDIRECT, registerPublic } from "./fixtures.ts"

let upstream: OidcProvider
beforeAll(async () => {
  upstream = await startOidcProvider({ redirectUri: CALLBACK, accessTokenTtlSeconds: 3 })
})
afterAll(() => upstream.close())

const federated = <A, E, R>(body: Effect.Effect<A, E, R>, seen?: Array<string>) =>
  withFederation({ issuer: upstream.issuer, clientId: upstream.clientId, clientSecret: upstream.clientSecret, ...(seen === undefined ? {} : { seen }) })(body)

/** A registered client's authorization request, started towards the upstream. */
const start = Effect.gen(function*() {
  const client = yield* registerPublic()
  const started = yield* startUpstreamAuthorization(authorizationRequest(client.clientId))
  return { client, started, transactionId: started.pending.transaction.id }
})

/** The user at the upstream: sign in as `login` (or cancel), consent; the callback's query. */
const signIn = (url: string, options: { readonly login?: string; readonly abort?: boolean } = {}) =>
  Effect.promise(() => driveInteraction(upstream, url, options)).pipe(Effect.map((location): UpstreamCallback => {
    const query = new URL(location).searchParams
    const param = (name: string) => query.get(name) ?? undefined
    return { state: param("state"), code: param("code"), error: param("error"), iss: param("iss") }
  }))

/** Start, sign in as carol, complete: our redirect to the client. */
const federatedCode = Effect.gen(function*() {
  const flow = yield* start
  const redirect = yield* completeUpstreamAuthorization(yield* signIn(flow.started.url, { login: "carol" }))
  return { ...flow, redirect, code: redirect.params["code"] ?? "" }
})

describe("federation: discovery", () => {
  it.live("finds the OpenID configuration once and caches it", () => {
    const seen: Array<string> = []
    return federated(
      Effect.gen(function*() {
        const federation = yield* Federation
        const metadata = yield* federation.metadata
        expect(metadata.issuer).toBe(upstream.issuer)
        expect(metadata.token_endpoint).toBe(`${upstream.issuer}/token`)
        expect(metadata.userinfo_endpoint).toBeDefined()
        yield* federation.metadata
        expect(seen).toEqual([`${upstream.issuer}/.well-known/openid-configuration`])
      }),
      seen
    )
  })

  it.scopedLive("falls back to RFC 8414 metadata (issuer with a path), and a refused document is not cached", () =>
    Effect.gen(function*() {
      const replies = new Map<string, Reply>()
      const server = yield* staticServer(replies)
      const issuer = `${server.origin}/tenant`
      expect(discoveryUrls(issuer)).toEqual([
        `${server.origin}/tenant/.well-known/openid-configuration`,
        `${server.origin}/.well-known/oauth-authorization-server/tenant`
      ])
      const seen: Array<string> = []
      yield* withFederation({ issuer, seen })(Effect.gen(function*() {
        const federation = yield* Federation
        // Another issuer in the document: refused (RFC 8414 §3.3), and tried again next time.
        replies.set("/.well-known/oauth-authorization-server/tenant", { status: 200, body: metadataDocument() })
        const mismatch = yield* Effect.flip(federation.metadata)
        expect(mismatch).toBeInstanceOf(FederationError)
        expect(mismatch).toMatchObject({ step: "discovery", reason: "Invalid", description: "issuer does not match" })
        replies.set("/.well-known/oauth-authorization-server/tenant", {
          status: 200,
          body: metadataDocument({ issuer: "{origin}/tenant" })
        })
        const metadata = yield* federation.metadata
        expect(metadata.authorization_endpoint).toBe(`${server.origin}/authorize`)
        expect(seen).toEqual([...discoveryUrls(issuer), ...discoveryUrls(issuer)])
      }))
    }))

  it.scopedLive("refuses metadata without PKCE S256, and reports an unreachable upstream as Unavailable", () =>
    Effect.gen(function*() {
      const replies = new Map<string, Reply>([[
        "/.well-known/openid-configuration",
        { status: 200, body: metadataDocument({ code_challenge_methods_supported: ["plain"] }) }
      ]])
      const server = yield* staticServer(replies)
      yield* withFederation({ issuer: server.origin })(Effect.gen(function*() {
        const error = yield* Effect.flip((yield* Federation).metadata)
        expect(error).toMatchObject({ step: "discovery", reason: "Invalid", description: "PKCE S256 is not supported" })
      }))
      const closed = yield* Effect.scoped(Effect.map(staticServer(new Map()), (s) => s.origin))
      yield* withFederation({ issuer: closed })(Effect.gen(function*() {
        const error = yield* Effect.flip((yield* Federation).metadata)
        expect(error).toMatchObject({ step: "discovery", reason: "Unavailable" })
        expect(error.message).not.toContain("secret")
      }))
    }))

  it.live("an upstream that cannot be discovered: the client gets temporarily_unavailable and the request is dropped", () =>
    Effect.gen(function*() {
      const closed = yield* Effect.scoped(Effect.map(staticServer(new Map()), (s) => s.origin))
      yield* withFederation({ issuer: closed })(Effect.gen(function*() {
        const client = yield* registerPublic()
        const error = yield* Effect.flip(startUpstreamAuthorization(authorizationRequest(client.clientId)))
        expect(error).toBeInstanceOf(AuthorizationErrorRedirect)
        const redirect = (error as AuthorizationErrorRedirect).redirect
        expect(redirect.redirectUri).toBe(REDIRECT)
        expect(redirect.params).toMatchObject({ error: "temporarily_unavailable", state: "state-123", iss: ISSUER })
        const raw = yield* (yield* RawStorage).dump
        expect(raw.filter((entry) => entry.includes("pending:"))).toEqual([])
      }))
    }))
})

describe("federation: the authorization round trip", () => {
  it.live("the upstream authorization URL carries our client, callback, scopes, state and an S256 PKCE challenge", () =>
    federated(Effect.gen(function*() {
      const { started, transactionId } = yield* start
      const url = new URL(started.url)
      expect(`${url.origin}${url.pathname}`).toBe(`${upstream.issuer}/auth`)
      const transaction = Option.getOrThrow(yield* (yield* TokenStore).getTransaction(transactionId))
      const saved = transaction.upstream
      if (saved === undefined) return expect.fail("the transaction keeps no upstream request")
      const verifier = Redacted.value(saved.codeVerifier)
      expect(verifier).toMatch(/^[A-Za-z0-9_-]{43,128}$/)
      expect(Object.fromEntries(url.searchParams)).toEqual({
        response_type: "code",
        client_id: upstream.clientId,
        redirect_uri: CALLBACK,
        scope: UPSTREAM_SCOPES.join(" "),
        prompt: "consent",
        state: `${transactionId}.${saved.state}`,
        code_challenge: createHash("sha256").update(verifier).digest("base64url"),
        code_challenge_method: "S256"
      })
      expect(saved.state.length).toBeGreaterThanOrEqual(32)
      expect(started.url).not.toContain(verifier)
    })))

  it.live("a callback with a tampered, unknown or missing state is refused and leaves the request pending", () =>
    federated(Effect.gen(function*() {
      const { transactionId, started } = yield* start
      const callback = yield* signIn(started.url)
      const state = callback.state ?? ""
      const tampered = `${state.slice(0, -1)}${state.endsWith("A") ? "B" : "A"}`
      for (const bad of [tampered, `unknown-id.${state.split(".")[1]}`, transactionId, "", undefined]) {
        const error = yield* Effect.flip(completeUpstreamAuthorization({ ...callback, state: bad }))
        expect(error._tag).toBe("InvalidRequest")
      }
      expect(Option.isSome(yield* (yield* TokenStore).getTransaction(transactionId))).toBe(true)
      // The genuine callback still goes through; replayed, it is refused.
      const redirect = yield* completeUpstreamAuthorization(callback)
      expect(redirect.params["code"]).toBeDefined()
      expect((yield* Effect.flip(completeUpstreamAuthorization(callback)))._tag).toBe("InvalidRequest")
    })))

  it.live("the provider tokens are stored sealed under the pending authorization, and our code exchange moves them to the grant", () =>
    federated(Effect.gen(function*() {
      const { client, code, redirect, transactionId } = yield* federatedCode
      expect(redirect.redirectUri).toBe(REDIRECT)
      expect(redirect.params).toMatchObject({ state: "state-123", iss: ISSUER })
      const providerTokens = yield* ProviderTokenStore
      const stored = Option.getOrThrow(yield* providerTokens.getTokens(transactionId, "upstream"))
      const accessToken = Redacted.value(stored.accessToken)
      const refreshToken = Redacted.value(stored.refreshToken ?? Redacted.make(""))
      expect(refreshToken).not.toBe("")
      expect(stored.scopes).toEqual(UPSTREAM_SCOPES)
      const now = yield* Clock.currentTimeMillis
      expect(stored.accessExpiresAt).toBeGreaterThan(now)
      expect(stored.accessExpiresAt).toBeLessThanOrEqual(now + upstream.accessTokenTtlSeconds * 1000)
      const raw = (yield* (yield* RawStorage).dump).join("\n")
      expect(raw).not.toContain(accessToken)
      expect(raw).not.toContain(refreshToken)

      const tokens = yield* exchangeCode({ client: credentials(client.clientId), code, redirectUri: REDIRECT, codeVerifier: pkce().verifier })
      expect(Option.isNone(yield* providerTokens.getTokens(transactionId, "upstream"))).toBe(true)
      const moved = Option.getOrThrow(yield* providerTokens.getTokens(tokens.grantId, "upstream"))
      expect(Redacted.value(moved.accessToken)).toBe(accessToken)
      // The upstream's `sub` is our subject.
      const verified = yield* verifyAccessToken(Redacted.value(tokens.accessToken))
      expect(verified.subject).toBe("carol")
      expect(verified.grantId).toBe(tokens.grantId)
    })))

  it.live("the upstream's refusal ends the request: access_denied (with state) to the client, no tokens kept", () =>
    federated(Effect.gen(function*() {
      const { started, transactionId } = yield* start
      const callback = yield* signIn(started.url, { abort: true })
      expect(callback.error).toBe("access_denied")
      const redirect = yield* completeUpstreamAuthorization(callback)
      expect(redirect.redirectUri).toBe(REDIRECT)
      expect(redirect.params).toMatchObject({ error: "access_denied", state: "state-123", iss: ISSUER })
      expect(redirect.params["code"]).toBeUndefined()
      expect(Option.isNone(yield* (yield* TokenStore).getTransaction(transactionId))).toBe(true)
      expect(yield* (yield* ProviderTokenStore).getProviderIds(transactionId)).toEqual([])
    })))

  it.live("a callback naming another issuer (RFC 9207 mix-up) is refused", () =>
    federated(Effect.gen(function*() {
      const { started } = yield* start
      const callback = yield* signIn(started.url)
      const redirect = yield* completeUpstreamAuthorization({ ...callback, iss: "https://attacker.example" })
      expect(redirect.params).toMatchObject({ error: "access_denied", state: "state-123" })
    })))

  it.live("once the provider's access token has expired, the refresher renews it upstream, once for concurrent callers", () => {
    const seen: Array<string> = []
    return federated(
      Effect.gen(function*() {
        const { client, code } = yield* federatedCode
        const tokens = yield* exchangeCode({ client: credentials(client.clientId), code, redirectUri: REDIRECT, codeVerifier: pkce().verifier })
        const federation = yield* Federation
        const refresher = yield* ProviderTokenRefresher
        const first = yield* refresher.getValidTokens(tokens.grantId, "upstream")
        expect(yield* federation.userinfo(first.accessToken)).toEqual({ sub: "carol", name: displayName("carol") })

        // Real time: the provider's clock decides.
        const now = yield* Clock.currentTimeMillis
        yield* Effect.sleep((first.accessExpiresAt ?? now) - now + 100)
        const expired = yield* Effect.flip(federation.userinfo(first.accessToken))
        expect(expired).toMatchObject({ step: "userinfo", reason: "Rejected", status: 401 })

        const tokenCalls = () => seen.filter((url) => url === `${upstream.issuer}/token`).length
        const before = tokenCalls()
        const renewed = yield* Effect.all(Array.from({ length: 5 }, () => refresher.getValidTokens(tokens.grantId, "upstream")), {
          concurrency: "unbounded"
        })
        expect(tokenCalls() - before).toBe(1)
        const fresh = renewed.map((t) => Redacted.value(t.accessToken))
        expect(new Set(fresh).size).toBe(1)
        expect(fresh[0]).not.toBe(Redacted.value(first.accessToken))
        expect(yield* federation.userinfo(renewed[0]?.accessToken ?? first.accessToken)).toMatchObject({ sub: "carol" })
        const kept = Option.getOrThrow(yield* (yield* ProviderTokenStore).getTokens(tokens.grantId, "upstream"))
        expect(Redacted.value(kept.accessToken)).toBe(fresh[0])
        expect(kept.refreshToken).toBeDefined()
      }),
      seen
    )
  })
})
