import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted, TestClock } from "effect"
import { decodeJwt } from "jose"
import { verifyAccessToken } from "../../src/oauth/accessTokens.ts"
import { approve, authorize, deny, redirectLocation } from "../../src/oauth/authorize.ts"
import { introspect, revoke } from "../../src/oauth/revocation.ts"
import { refreshTokens, token, tokenResponse } from "../../src/oauth/tokenEndpoint.ts"
import { ProviderTokenStore } from "../../src/services/ProviderTokenStore.ts"
import { TokenStore } from "../../src/services/TokenStore.ts"
import {
  authorizationRequest,
  codeFor,
  credentials,
  OTHER_RESOURCE,
  pkce,
  REDIRECT,
  registerPublic,
  RESOURCE,
  tokensFor,
  using
} from "./fixtures.ts"

const exchange = (clientId: string, code: string, overrides: Record<string, string> = {}) =>
  token({
    grantType: "authorization_code",
    client: credentials(clientId),
    code,
    redirectUri: REDIRECT,
    codeVerifier: pkce().verifier,
    ...overrides
  })

const refresh = (clientId: string, refreshToken: string, scope?: string) =>
  token({ grantType: "refresh_token", client: credentials(clientId), refreshToken, ...(scope === undefined ? {} : { scope }) })

describe("the authorization-code flow end to end", () => {
  it.effect("register -> authorize -> consent -> token -> verify -> refresh -> replay (grant revoked) -> verify fails", () =>
    using()(Effect.gen(function*() {
      const client = yield* registerPublic()
      const pending = yield* authorize(authorizationRequest(client.clientId))
      expect(pending.transaction.scopes).toEqual(["read", "write"])
      const approved = yield* approve({ transactionId: pending.transaction.id, subject: "alice" })
      const location = new URL(redirectLocation(approved.redirect))
      expect(location.origin + location.pathname).toBe(REDIRECT)
      expect(location.searchParams.get("state")).toBe("state-123")
      expect(location.searchParams.get("iss")).toBe("https://auth.example")
      const code = location.searchParams.get("code") as string

      const issued = yield* exchange(client.clientId, code)
      const body = tokenResponse(issued)
      expect(body["token_type"]).toBe("Bearer")
      expect(body["expires_in"]).toBe(3600)
      expect(body["scope"]).toBe("read write")
      const access = body["access_token"] as string
      const first = body["refresh_token"] as string

      const verified = yield* verifyAccessToken(access, { expectedAudience: RESOURCE, requiredScopes: ["read"] })
      expect(verified).toMatchObject({ subject: "alice", clientId: client.clientId, scopes: ["read", "write"], audience: [RESOURCE] })

      yield* TestClock.adjust("10 minutes")
      const rotated = yield* refresh(client.clientId, first)
      const second = Redacted.value(rotated.refreshToken as Redacted.Redacted<string>)
      expect(second).not.toBe(first)
      yield* verifyAccessToken(Redacted.value(rotated.accessToken), { expectedAudience: RESOURCE })

      yield* TestClock.adjust("1 minute") // past the 30 s grace window
      const reuse = yield* Effect.flip(refresh(client.clientId, first))
      expect(reuse._tag).toBe("InvalidGrant")
      for (const t of [access, Redacted.value(rotated.accessToken)]) {
        expect((yield* Effect.flip(verifyAccessToken(t, { expectedAudience: RESOURCE })))._tag).toBe("InvalidToken")
      }
      expect((yield* Effect.flip(refresh(client.clientId, second)))._tag).toBe("InvalidGrant")
      expect(yield* introspect({ token: second })).toEqual({ active: false })
    })))

  it.effect("revoke a refresh token: its grant goes, access tokens too; introspection follows", () =>
    using()(Effect.gen(function*() {
      const { accessToken, client, refreshToken } = yield* tokensFor()
      const before = yield* introspect({ token: accessToken })
      expect(before).toMatchObject({ active: true, sub: "alice", client_id: client.clientId, scope: "read write", aud: RESOURCE, token_type: "Bearer" })
      expect(yield* introspect({ token: refreshToken })).toMatchObject({ active: true, sub: "alice", scope: "read write" })
      expect(yield* introspect({ token: refreshToken, clientId: "someone-else" })).toEqual({ active: false })

      yield* revoke({ client: credentials(client.clientId), token: refreshToken, tokenTypeHint: "refresh_token" })
      expect(yield* introspect({ token: accessToken })).toEqual({ active: false })
      expect(yield* introspect({ token: refreshToken })).toEqual({ active: false })
      expect((yield* Effect.flip(verifyAccessToken(accessToken)))._tag).toBe("InvalidToken")
      // Unknown and already revoked tokens succeed without effect (RFC 7009 §2.2).
      yield* revoke({ client: credentials(client.clientId), token: refreshToken })
      yield* revoke({ client: credentials(client.clientId), token: "never-issued" })
    })))

  it.effect("revoke a JWT access token: its grant goes", () =>
    using()(Effect.gen(function*() {
      const { accessToken, client, refreshToken } = yield* tokensFor()
      yield* revoke({ client: credentials(client.clientId), token: accessToken, tokenTypeHint: "access_token" })
      expect((yield* Effect.flip(verifyAccessToken(accessToken)))._tag).toBe("InvalidToken")
      expect((yield* Effect.flip(refresh(client.clientId, refreshToken)))._tag).toBe("InvalidGrant")
    })))

  it.effect("a client cannot revoke another client's tokens", () =>
    using()(Effect.gen(function*() {
      const { accessToken, refreshToken } = yield* tokensFor()
      const other = yield* registerPublic()
      yield* revoke({ client: credentials(other.clientId), token: refreshToken })
      yield* revoke({ client: credentials(other.clientId), token: accessToken })
      yield* verifyAccessToken(accessToken)
      expect(yield* introspect({ token: refreshToken })).toMatchObject({ active: true })
    })))
})

describe("authorize", () => {
  it.effect("PKCE: S256 only; plain, a missing method and a missing challenge are refused", () =>
    using()(Effect.gen(function*() {
      const client = yield* registerPublic()
      for (
        const overrides of [
          { codeChallengeMethod: "plain" },
          { codeChallengeMethod: undefined },
          { codeChallenge: undefined },
          { codeChallenge: "too-short" }
        ]
      ) {
        const error = yield* Effect.flip(authorize(authorizationRequest(client.clientId, overrides)))
        expect(error._tag).toBe("AuthorizationErrorRedirect")
        if (error._tag !== "AuthorizationErrorRedirect") continue
        expect(error.error._tag).toBe("InvalidRequest")
        expect(error.redirect.params).toMatchObject({ error: "invalid_request", state: "state-123" })
      }
    })))

  it.effect("the redirect URI must match a registered one exactly (a loopback one in any port), and its errors are never redirected", () =>
    using()(Effect.gen(function*() {
      const client = yield* registerPublic({ redirect_uris: [REDIRECT, "http://127.0.0.1:8080/cb"] })
      for (
        const redirectUri of [
          `${REDIRECT}/`,
          `${REDIRECT}?x=1`,
          "https://APP.example/callback",
          "https://app.example:8443/callback",
          "http://127.0.0.1:8080/cb/",
          "http://localhost:8080/cb",
          "http://[::1]:8080/cb",
          undefined
        ]
      ) {
        const error = yield* Effect.flip(authorize(authorizationRequest(client.clientId, { redirectUri })))
        expect(error._tag).toBe("InvalidRequest")
      }
      yield* authorize(authorizationRequest(client.clientId, { redirectUri: "http://127.0.0.1:8080/cb" }))
      // RFC 8252 §7.3: a native app's loopback listener gets whatever port is free.
      const other = yield* authorize(authorizationRequest(client.clientId, { redirectUri: "http://127.0.0.1:51234/cb" }))
      expect(other.transaction.redirectUri).toBe("http://127.0.0.1:51234/cb")
      expect((yield* Effect.flip(authorize(authorizationRequest("no-such-client"))))._tag).toBe("InvalidClient")
    })))

  it.effect("a single registered redirect URI may be left out", () =>
    using()(Effect.gen(function*() {
      const client = yield* registerPublic()
      const pending = yield* authorize(authorizationRequest(client.clientId, { redirectUri: undefined }))
      expect(pending.transaction.redirectUri).toBe(REDIRECT)
    })))

  it.effect("requested scopes are narrowed to the client's and the server's; consent narrows further", () =>
    using()(Effect.gen(function*() {
      const client = yield* registerPublic({ scope: "read write" })
      const pending = yield* authorize(authorizationRequest(client.clientId, { scope: "read admin unknown write" }))
      expect(pending.transaction.scopes).toEqual(["read", "write"])
      const none = yield* Effect.flip(authorize(authorizationRequest(client.clientId, { scope: "admin" })))
      expect(none._tag === "AuthorizationErrorRedirect" && none.error._tag).toBe("InvalidScope")
      const defaulted = yield* authorize(authorizationRequest(client.clientId, { scope: undefined }))
      expect(defaulted.transaction.scopes).toEqual(["read", "write"])

      const { tokens } = yield* tokensFor({ scope: "read write" }, ["read"])
      expect(tokens.scopes).toEqual(["read"])
      expect(decodeJwt(Redacted.value(tokens.accessToken))["scope"]).toBe("read")
    })))

  it.effect("resource: recorded and bound into the audience; resources the server does not serve are invalid_target", () =>
    using()(Effect.gen(function*() {
      const client = yield* registerPublic()
      for (const resource of ["https://evil.example/mcp", "not a uri", [RESOURCE, OTHER_RESOURCE], `${RESOURCE}#frag`]) {
        const error = yield* Effect.flip(authorize(authorizationRequest(client.clientId, { resource })))
        expect(error._tag === "AuthorizationErrorRedirect" && error.error._tag).toBe("InvalidTarget")
      }
      const other = yield* tokensFor({ resource: OTHER_RESOURCE })
      expect(decodeJwt(other.accessToken)["aud"]).toBe(OTHER_RESOURCE)
      yield* verifyAccessToken(other.accessToken, { expectedAudience: OTHER_RESOURCE })
      const wrong = yield* Effect.flip(verifyAccessToken(other.accessToken, { expectedAudience: RESOURCE }))
      expect(wrong).toMatchObject({ _tag: "InvalidToken", description: "token is not for this audience" })
      // No resource: the default audience (the first configured resource).
      const plain = yield* tokensFor({ resource: undefined })
      expect(decodeJwt(plain.accessToken)["aud"]).toBe(RESOURCE)
      // At the token endpoint the resource must be the one authorized.
      const flow = yield* codeFor({ resource: RESOURCE })
      const mismatch = yield* Effect.flip(exchange(flow.client.clientId, flow.code, { resource: OTHER_RESOURCE }))
      expect(mismatch._tag).toBe("InvalidTarget")
    })))

  it.effect("the user's denial goes back to the client as access_denied with state", () =>
    using()(Effect.gen(function*() {
      const client = yield* registerPublic()
      const pending = yield* authorize(authorizationRequest(client.clientId))
      const redirect = yield* deny(pending.transaction.id)
      expect(redirect.params).toMatchObject({ error: "access_denied", state: "state-123" })
      expect((yield* Effect.flip(approve({ transactionId: pending.transaction.id, subject: "alice" })))._tag).toBe("InvalidRequest")
    })))

  it.effect("a transaction is approved at most once, even by concurrent consents", () =>
    using()(Effect.gen(function*() {
      const client = yield* registerPublic()
      const pending = yield* authorize(authorizationRequest(client.clientId))
      const results = yield* Effect.all(
        Array.from({ length: 20 }, () => Effect.either(approve({ transactionId: pending.transaction.id, subject: "alice" }))),
        { concurrency: "unbounded" }
      )
      expect(results.filter((r) => r._tag === "Right")).toHaveLength(1)
    })))

  it.effect("pending authorizations expire after 10 minutes", () =>
    using()(Effect.gen(function*() {
      const client = yield* registerPublic()
      const pending = yield* authorize(authorizationRequest(client.clientId))
      yield* TestClock.adjust("10 minutes")
      expect((yield* Effect.flip(approve({ transactionId: pending.transaction.id, subject: "alice" })))._tag).toBe("InvalidRequest")
    })))
})

describe("code exchange", () => {
  it.effect("a replayed code fails and revokes the grant of the first exchange", () =>
    using()(Effect.gen(function*() {
      const { client, code } = yield* codeFor()
      const issued = yield* exchange(client.clientId, code)
      const access = Redacted.value(issued.accessToken)
      yield* verifyAccessToken(access)
      const replay = yield* Effect.flip(exchange(client.clientId, code))
      expect(replay).toMatchObject({ _tag: "InvalidGrant", description: "authorization code was already used; its grant is revoked" })
      expect((yield* Effect.flip(verifyAccessToken(access))).description).toBe("token has been revoked")
      expect((yield* Effect.flip(refresh(client.clientId, Redacted.value(issued.refreshToken as Redacted.Redacted<string>)))))
        .toMatchObject({ _tag: "InvalidGrant" })
    })))

  it.effect("a wrong or missing PKCE verifier fails; a wrong one burns the code", () =>
    using()(Effect.gen(function*() {
      const { client, code } = yield* codeFor()
      expect((yield* Effect.flip(exchange(client.clientId, code, { codeVerifier: undefined as unknown as string })))._tag)
        .toBe("InvalidRequest")
      const wrong = yield* Effect.flip(exchange(client.clientId, code, { codeVerifier: pkce("b").verifier }))
      expect(wrong).toMatchObject({ _tag: "InvalidGrant", description: "PKCE verification failed" })
      expect((yield* Effect.flip(exchange(client.clientId, code)))._tag).toBe("InvalidGrant")
    })))

  it.effect("the redirect URI and the client must be the authorization request's", () =>
    using()(Effect.gen(function*() {
      const first = yield* codeFor()
      const wrongRedirect = yield* Effect.flip(exchange(first.client.clientId, first.code, { redirectUri: "https://app.example/other" }))
      expect(wrongRedirect).toMatchObject({ _tag: "InvalidGrant", description: "redirect_uri does not match the authorization request" })
      const second = yield* codeFor()
      const other = yield* registerPublic()
      const stolen = yield* Effect.flip(exchange(other.clientId, second.code))
      expect(stolen).toMatchObject({ _tag: "InvalidGrant", description: "authorization code was issued to another client" })
    })))

  it.effect("codes live 60 seconds", () =>
    using()(Effect.gen(function*() {
      const { client, code } = yield* codeFor()
      yield* TestClock.adjust("60 seconds")
      expect((yield* Effect.flip(exchange(client.clientId, code)))._tag).toBe("InvalidGrant")
    })))

  it.effect("provider tokens move from the pending authorization to the grant", () =>
    using()(Effect.gen(function*() {
      const providers = yield* ProviderTokenStore
      const client = yield* registerPublic()
      const pending = yield* authorize(authorizationRequest(client.clientId))
      yield* providers.storeTokens(pending.transaction.id, "github", { accessToken: Redacted.make("gho_upstream") })
      const approved = yield* approve({ transactionId: pending.transaction.id, subject: "alice" })
      const issued = yield* exchange(client.clientId, approved.redirect.params["code"] as string)
      expect(yield* providers.getProviderIds(pending.transaction.id)).toEqual([])
      expect(yield* providers.getProviderIds(issued.grantId)).toEqual(["github"])
      const stored = Option.getOrThrow(yield* providers.getTokens(issued.grantId, "github"))
      expect(Redacted.value(stored.accessToken)).toBe("gho_upstream")
    })))

  it.effect("unsupported and missing grant types", () =>
    using()(Effect.gen(function*() {
      const client = yield* registerPublic()
      expect((yield* Effect.flip(token({ grantType: "password", client: credentials(client.clientId) })))._tag).toBe("UnsupportedGrantType")
      expect((yield* Effect.flip(token({ client: credentials(client.clientId) })))._tag).toBe("InvalidRequest")
    })))
})

describe("refresh", () => {
  it.effect("rotates on every use; the predecessor replayed within the grace window gets the same pair", () =>
    using()(Effect.gen(function*() {
      const { client, refreshToken } = yield* tokensFor()
      const first = yield* refresh(client.clientId, refreshToken)
      yield* TestClock.adjust("10 seconds")
      const again = yield* refresh(client.clientId, refreshToken)
      expect(Redacted.value(again.refreshToken as Redacted.Redacted<string>)).toBe(Redacted.value(first.refreshToken as Redacted.Redacted<string>))
      expect(Redacted.value(again.accessToken)).toBe(Redacted.value(first.accessToken))
      expect(again.expiresIn).toBe(3590)
      yield* verifyAccessToken(Redacted.value(again.accessToken))
    })))

  it.effect("a narrower scope is allowed, a wider one is invalid_scope; another client's token is invalid_grant", () =>
    using()(Effect.gen(function*() {
      const { client, refreshToken } = yield* tokensFor()
      expect((yield* Effect.flip(refresh(client.clientId, refreshToken, "read admin")))._tag).toBe("InvalidScope")
      const other = yield* registerPublic()
      expect((yield* Effect.flip(refresh(other.clientId, refreshToken)))._tag).toBe("InvalidGrant")
      const narrowed = yield* refresh(client.clientId, refreshToken, "read")
      expect(narrowed.scopes).toEqual(["read"])
      const next = Redacted.value(narrowed.refreshToken as Redacted.Redacted<string>)
      // The refresh token keeps the grant's scopes.
      expect((yield* refresh(client.clientId, next)).scopes).toEqual(["read", "write"])
    })))

  it.effect("the rotation chain stops at the grant's absolute lifetime", () =>
    using({ oauth: { grantTtl: "3 days", refreshTokenTtl: "2 days" } })(Effect.gen(function*() {
      const { client, refreshToken } = yield* tokensFor()
      let current = refreshToken
      for (let day = 0; day < 2; day++) {
        yield* TestClock.adjust("1 day")
        const next = yield* refresh(client.clientId, current)
        current = Redacted.value(next.refreshToken as Redacted.Redacted<string>)
      }
      // The access token never outlives the grant either.
      yield* TestClock.adjust("23 hours")
      const last = yield* refresh(client.clientId, current)
      expect(last.expiresIn).toBe(3600)
      yield* TestClock.adjust("30 minutes")
      const cut = yield* refresh(client.clientId, Redacted.value(last.refreshToken as Redacted.Redacted<string>))
      expect(cut.expiresIn).toBe(1800)
      yield* TestClock.adjust("30 minutes")
      const end = yield* Effect.flip(refresh(client.clientId, Redacted.value(cut.refreshToken as Redacted.Redacted<string>)))
      expect(end._tag).toBe("InvalidGrant")
    })))

  it.effect("refresh tokens live 30 days unused", () =>
    using()(Effect.gen(function*() {
      const { client, refreshToken } = yield* tokensFor()
      yield* TestClock.adjust("30 days")
      expect((yield* Effect.flip(refreshTokens({ client: credentials(client.clientId), refreshToken })))._tag).toBe("InvalidGrant")
    })))

  it.effect("a client registered without refresh_token gets no refresh token", () =>
    using()(Effect.gen(function*() {
      const client = yield* registerPublic({ grant_types: ["authorization_code"] })
      const pending = yield* authorize(authorizationRequest(client.clientId))
      const approved = yield* approve({ transactionId: pending.transaction.id, subject: "alice" })
      const issued = yield* exchange(client.clientId, approved.redirect.params["code"] as string)
      expect(issued.refreshToken).toBeUndefined()
    })))
})

describe("access tokens", () => {
  it.effect("seed 002's claims, a kid header, 1 hour by default; custom claims never replace them", () =>
    using({
      oauth: {
        tokenClaims: (ctx) => Effect.succeed({ roles: ["admin"], tenant_id: `t-${ctx.subject}`, sub: "mallory", iss: "https://evil" })
      }
    })(Effect.gen(function*() {
      const { accessToken, client } = yield* tokensFor()
      const claims = decodeJwt(accessToken)
      expect(claims).toMatchObject({
        sub: "alice",
        iss: "https://auth.example",
        aud: RESOURCE,
        iat: 0,
        exp: 3600,
        scope: "read write",
        client_id: client.clientId,
        roles: ["admin"],
        tenant_id: "t-alice"
      })
      expect(typeof claims.jti).toBe("string")
      expect(typeof claims["gid"]).toBe("string")
      yield* TestClock.adjust("59 minutes")
      yield* verifyAccessToken(accessToken)
      yield* TestClock.adjust("1 minute")
      expect((yield* Effect.flip(verifyAccessToken(accessToken))).description).toBe("token has expired")
    })))

  it.effect("lifetimes are configurable", () =>
    using({ oauth: { accessTokenTtl: "5 minutes", codeTtl: "10 minutes" } })(Effect.gen(function*() {
      const { client, code } = yield* codeFor()
      yield* TestClock.adjust("9 minutes")
      const issued = yield* exchange(client.clientId, code)
      expect(issued.expiresIn).toBe(300)
    })))

  it.effect("opaque tokens: kept in the TokenStore, verified and revoked through it", () =>
    using({ oauth: { accessTokenFormat: "opaque" } })(Effect.gen(function*() {
      const { accessToken, client, refreshToken } = yield* tokensFor()
      expect(accessToken.split(".")).toHaveLength(1)
      expect(Option.isSome(yield* (yield* TokenStore).getAccessToken(accessToken))).toBe(true)
      expect(yield* verifyAccessToken(accessToken, { requiredScopes: ["read"] })).toMatchObject({ format: "opaque", subject: "alice" })
      expect((yield* Effect.flip(verifyAccessToken(accessToken, { expectedAudience: OTHER_RESOURCE })))._tag).toBe("InvalidToken")
      yield* revoke({ client: credentials(client.clientId), token: accessToken })
      expect((yield* Effect.flip(verifyAccessToken(accessToken)))._tag).toBe("InvalidToken")
      // Only that token: the refresh token still works.
      const next = yield* refresh(client.clientId, refreshToken)
      yield* verifyAccessToken(Redacted.value(next.accessToken))
      yield* TestClock.adjust("1 hour")
      expect((yield* Effect.flip(verifyAccessToken(Redacted.value(next.accessToken))))._tag).toBe("InvalidToken")
    })))
})
