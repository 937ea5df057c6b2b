/**
 * Upstream mode's handlers and tool without a socket of ours: `GET /authorize`
 * and `GET /callback` as `HttpServerRequest.fromWeb` requests, against a real
 * oidc-provider whose pages a scripted browser fills in; then the
 * `upstream_userinfo` tool with the token our code exchange issued. Nothing
 * secret may reach a log line.
 */
import { HttpServerRequest } from "@effect/platform"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { upstreamAuthorize } from "../../src/http/upstream/authorize.ts"
import { upstreamCallback } from "../../src/http/upstream/callback.ts"
import type { ToolCall, ToolOutcome } from "../../src/http/mcp/tool.ts"
import { UPSTREAM_SCOPE, upstreamUserinfo } from "../../src/http/mcp/tools/upstreamUserinfo.ts"
import { type VerifiedAccessToken, verifyAccessToken } from "../../src/oauth/accessTokens.ts"
import { Federation, FederationError } from "../../src/oauth/federation.ts"
import { exchangeCode } from "../../src/oauth/tokenEndpoint.ts"
import { ProviderTokenStore } from "../../src/services/ProviderTokenStore.ts"
import { CALLBACK, federationEngine } from "../support/federation.ts"
import { displayName, driveInteraction, type OidcProvider, startOidcProvider } from "../support/oidcProvider.ts"
import { authorizeQuery, CLIENT_STATE, credentials, engine, ISSUER, pkce, REDIRECT, registerPublic, RESOURCE, tokensFor } from "../oauth/fixtures.ts"
import { answer, captureLogs } from "../support/http.ts"

let upstream: OidcProvider
beforeAll(async () => {
  upstream = await startOidcProvider({ redirectUri: CALLBACK })
})
afterAll(() => upstream.close())

const { captured, lines: logLines } = captureLogs()

/** Fresh engine with federation to the oidc-provider; log lines captured. */
const federated = <A, E, R>(body: Effect.Effect<A, E, R>) => {
  const layer = federationEngine({ issuer: upstream.issuer, clientId: upstream.clientId, clientSecret: upstream.clientSecret })
  return captured(Effect.scoped(Effect.provide(body, Layer.fresh(layer)))) as Effect.Effect<A, unknown, never>
}

const request = (url: string) => HttpServerRequest.fromWeb(new Request(url))

/** A first-round call of the 2026-07-28 era by the holder of `token`. */
const callBy = (token: VerifiedAccessToken): ToolCall => ({
  token,
  protocolVersion: "2026-07-28",
  clientCapabilities: {},
  inputResponses: {},
  state: undefined
})

/** The result of a tool's outcome (these tools never ask for input). */
const resultOf = (outcome: ToolOutcome) => {
  if (outcome._tag !== "Complete") throw new Error("expected a complete result")
  return outcome.result
}

describe("upstream mode: /authorize and /callback", () => {
  it.live("sends the user to the upstream, and the callback on to the client with our code; nothing secret is logged", () =>
    federated(Effect.gen(function*() {
      const client = yield* registerPublic()
      const started = yield* Effect.flatMap(upstreamAuthorize(request(`${ISSUER}/authorize?${authorizeQuery(client.clientId)}`)), answer)
      expect(started.status).toBe(302)
      expect(started.headers.get("cache-control")).toBe("no-store")
      const upstreamUrl = new URL(started.headers.get("location") ?? "")
      expect(`${upstreamUrl.origin}${upstreamUrl.pathname}`).toBe(`${upstream.issuer}/auth`)
      expect(upstreamUrl.searchParams.get("redirect_uri")).toBe(CALLBACK)

      const callbackUrl = yield* Effect.promise(() => driveInteraction(upstream, upstreamUrl.href, { login: "dave" }))
      const upstreamCode = new URL(callbackUrl).searchParams.get("code") ?? ""
      const back = yield* Effect.flatMap(upstreamCallback(request(callbackUrl)), answer)
      expect(back.status).toBe(302)
      const toClient = new URL(back.headers.get("location") ?? "")
      expect(`${toClient.origin}${toClient.pathname}`).toBe(REDIRECT)
      expect(toClient.searchParams.get("state")).toBe(CLIENT_STATE)
      expect(toClient.searchParams.get("iss")).toBe(ISSUER)
      const code = toClient.searchParams.get("code") ?? ""

      const tokens = yield* exchangeCode({ client: credentials(client.clientId), code, redirectUri: REDIRECT, codeVerifier: pkce().verifier })
      expect((yield* verifyAccessToken(Redacted.value(tokens.accessToken))).subject).toBe("dave")
      const stored = yield* (yield* ProviderTokenStore).getTokens(tokens.grantId, "upstream")
      if (stored._tag === "None") return expect.fail("no provider tokens for the grant")

      const secrets = [
        upstreamCode,
        code,
        upstream.clientSecret,
        Redacted.value(stored.value.accessToken),
        Redacted.value(stored.value.refreshToken ?? Redacted.make("no refresh token")),
        upstreamUrl.searchParams.get("state") ?? ""
      ]
      expect(logLines.some((line) => line.includes("upstream authorization completed"))).toBe(true)
      for (const secret of secrets) expect(logLines.join("\n")).not.toContain(secret)
    })))

  it.live("the upstream's refusal goes on to the client as access_denied", () =>
    federated(Effect.gen(function*() {
      const client = yield* registerPublic()
      const started = yield* Effect.flatMap(upstreamAuthorize(request(`${ISSUER}/authorize?${authorizeQuery(client.clientId)}`)), answer)
      const callbackUrl = yield* Effect.promise(() => driveInteraction(upstream, started.headers.get("location") ?? "", { abort: true }))
      const back = yield* Effect.flatMap(upstreamCallback(request(callbackUrl)), answer)
      expect(back.status).toBe(302)
      const toClient = new URL(back.headers.get("location") ?? "")
      expect(Object.fromEntries(toClient.searchParams)).toMatchObject({ error: "access_denied", state: CLIENT_STATE, iss: ISSUER })
    })))

  it.live("bad requests are shown to the user: an unknown client at /authorize, a forged or repeated callback", () =>
    federated(Effect.gen(function*() {
      const unknown = yield* Effect.flatMap(upstreamAuthorize(request(`${ISSUER}/authorize?${authorizeQuery("nobody")}`)), answer)
      expect(unknown.status).toBe(400)
      expect(unknown.headers.get("content-type")).toContain("text/html")
      expect(unknown.headers.get("location")).toBeNull()

      const forged = yield* Effect.flatMap(upstreamCallback(request(`${ISSUER}/callback?code=x&state=abc.def`)), answer)
      expect(forged.status).toBe(400)
      expect(forged.body).toContain("state")
      const twice = yield* Effect.flatMap(upstreamCallback(request(`${ISSUER}/callback?state=a.b&state=a.c`)), answer)
      expect(twice.status).toBe(400)

      // A client error after the redirect URI is known good goes to the client.
      const client = yield* registerPublic()
      const noPkce = yield* Effect.flatMap(
        upstreamAuthorize(request(`${ISSUER}/authorize?${authorizeQuery(client.clientId, { code_challenge_method: "plain" })}`)),
        answer
      )
      expect(noPkce.status).toBe(302)
      expect(new URL(noPkce.headers.get("location") ?? "").searchParams.get("error")).toBe("invalid_request")
    })))

  it.effect("without federation (local mode) both answer 404", () =>
    Effect.gen(function*() {
      const authorize = yield* Effect.flatMap(upstreamAuthorize(request(`${ISSUER}/authorize`)), answer)
      const callback = yield* Effect.flatMap(upstreamCallback(request(`${ISSUER}/callback`)), answer)
      expect([authorize.status, callback.status]).toEqual([404, 404])
    }).pipe(Effect.provide(Layer.fresh(engine())), Effect.scoped))
})

describe("upstream mode: the upstream_userinfo tool", () => {
  it.live("returns the upstream's userinfo for the caller's grant; without provider tokens, a plain error result", () =>
    federated(Effect.gen(function*() {
      const tool = upstreamUserinfo
      expect(tool.name).toBe("upstream_userinfo")
      expect(tool.requiredScopes).toEqual([UPSTREAM_SCOPE])

      const client = yield* registerPublic()
      const started = yield* Effect.flatMap(upstreamAuthorize(request(`${ISSUER}/authorize?${authorizeQuery(client.clientId)}`)), answer)
      const callbackUrl = yield* Effect.promise(() => driveInteraction(upstream, started.headers.get("location") ?? "", { login: "erin" }))
      const back = yield* Effect.flatMap(upstreamCallback(request(callbackUrl)), answer)
      const code = new URL(back.headers.get("location") ?? "").searchParams.get("code") ?? ""
      const tokens = yield* exchangeCode({ client: credentials(client.clientId), code, redirectUri: REDIRECT, codeVerifier: pkce().verifier })
      const result = resultOf(yield* tool.call({}, callBy(yield* verifyAccessToken(Redacted.value(tokens.accessToken)))))
      expect(result.isError).toBeUndefined()
      expect(result.structuredContent).toEqual({ sub: "erin", name: displayName("erin") })
      expect(JSON.parse(String(result.content[0]?.["text"]))).toEqual(result.structuredContent)

      // A grant from local sign-in has no upstream tokens: the model is told to sign in again.
      const local = yield* tokensFor()
      const orphan = resultOf(yield* tool.call({}, callBy(yield* verifyAccessToken(local.accessToken))))
      expect(orphan.isError).toBe(true)
      expect(orphan.content[0]?.["text"]).toMatch(/sign in again/)
    })))

  it.live("an upstream that does not answer gives an error result for the model, without the token", () =>
    federated(Effect.gen(function*() {
      const federation = yield* Federation
      yield* (yield* ProviderTokenStore).storeTokens("grant-x", "upstream", { accessToken: Redacted.make("at-secret-value") })
      const down: Federation.Service = {
        ...federation,
        userinfo: () => Effect.fail(new FederationError({ issuer: federation.issuer, step: "userinfo", reason: "Unavailable", status: 503 }))
      }
      const token: VerifiedAccessToken = {
        format: "jwt",
        subject: "frank",
        clientId: "client",
        grantId: "grant-x",
        scopes: [UPSTREAM_SCOPE],
        audience: [RESOURCE],
        expiresAt: 1,
        claims: {}
      }
      const result = resultOf(yield* Effect.provideService(upstreamUserinfo.call({}, callBy(token)), Federation, down))
      expect(result).toEqual({ content: [{ type: "text", text: "The upstream identity provider is unavailable: try again later." }], isError: true })
      expect(logLines.join("\n")).not.toContain("at-secret-value")
    })))
})
