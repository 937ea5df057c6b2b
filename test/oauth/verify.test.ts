import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { decodeJwt, decodeProtectedHeader } from "jose"
import { renderOAuthError } from "../../src/errors/render.ts"
import { verifyAccessToken } from "../../src/oauth/accessTokens.ts"
import { requireScopes } from "../../src/oauth/scopes.ts"
import { Jwks } from "../../src/services/Jwks.ts"
import { TokenStore } from "../../src/services/TokenStore.ts"
import { ISSUER, RESOURCE, tokensFor, using } from "./fixtures.ts"

describe("access token verification (seed 002's options)", () => {
  it.effect("requiredScopes: a missing scope is insufficient_scope naming the scopes needed", () =>
    using()(Effect.gen(function*() {
      const { accessToken } = yield* tokensFor({ scope: "read" })
      yield* verifyAccessToken(accessToken, { requiredScopes: ["read"] })
      const error = yield* Effect.flip(verifyAccessToken(accessToken, { requiredScopes: ["read", "write"] }))
      expect(error).toMatchObject({ _tag: "InsufficientScope", scope: ["read", "write"] })
      if (error._tag !== "InsufficientScope") throw new Error("expected InsufficientScope")
      const rendered = renderOAuthError(error, { challenge: { scheme: "Bearer", tokenPresented: true } })
      expect(rendered.status).toBe(403)
      expect(rendered.headers["WWW-Authenticate"]).toContain("scope=\"read write\"")
    })))

  it.effect("tool-level scopes (seed 002's @Tool({ scopes })) are one function", () =>
    using()(Effect.gen(function*() {
      const { accessToken } = yield* tokensFor({ scope: "read" })
      const principal = yield* verifyAccessToken(accessToken)
      yield* requireScopes(principal, [])
      yield* requireScopes(principal, ["read"])
      const error = yield* Effect.flip(requireScopes(principal, ["messages:write"]))
      expect(error).toMatchObject({ _tag: "InsufficientScope", scope: ["messages:write"] })
    })))

  it.effect("a revoked grant fails its unexpired access tokens", () =>
    using()(Effect.gen(function*() {
      const { accessToken, tokens } = yield* tokensFor()
      yield* verifyAccessToken(accessToken)
      yield* (yield* TokenStore).revokeGrant(tokens.grantId)
      const error = yield* Effect.flip(verifyAccessToken(accessToken))
      expect(error).toMatchObject({ _tag: "InvalidToken", description: "token has been revoked" })
    })))

  it.effect("issuer, audience and clock tolerance default to the server's settings and can be overridden", () =>
    using({ oauth: { clockTolerance: "30 seconds" } })(Effect.gen(function*() {
      const { accessToken } = yield* tokensFor()
      expect((yield* Effect.flip(verifyAccessToken(accessToken, { issuer: "https://elsewhere.example" }))).description)
        .toBe("token issuer mismatch")
      expect((yield* Effect.flip(verifyAccessToken(accessToken, { expectedAudience: "https://elsewhere.example" }))).description)
        .toBe("token is not for this audience")
      yield* verifyAccessToken(accessToken, { expectedAudience: ["https://elsewhere.example", RESOURCE] })
      yield* TestClock.adjust("3620 seconds")
      yield* verifyAccessToken(accessToken)
      expect((yield* Effect.flip(verifyAccessToken(accessToken, { clockTolerance: 0 }))).description).toBe("token has expired")
      yield* TestClock.adjust("15 seconds")
      expect((yield* Effect.flip(verifyAccessToken(accessToken))).description).toBe("token has expired")
    })))

  it.effect("a validly signed token that is not one of our access tokens is refused", () =>
    using()(Effect.gen(function*() {
      const jwks = yield* Jwks
      const base = { iss: ISSUER, aud: RESOURCE, sub: "alice", client_id: "c", exp: 3600 }
      const noGrant = yield* jwks.sign(base)
      expect((yield* Effect.flip(verifyAccessToken(noGrant.token))).description).toBe("token claims are malformed")
      const noExp = yield* jwks.sign({ ...base, exp: undefined, gid: "g" })
      expect((yield* Effect.flip(verifyAccessToken(noExp.token))).description).toBe("token has no expiry")
      const unknownGrant = yield* jwks.sign({ ...base, gid: "never-granted" })
      expect((yield* Effect.flip(verifyAccessToken(unknownGrant.token))).description).toBe("token has been revoked")
      expect((yield* Effect.flip(verifyAccessToken("opaque-but-unknown"))).description).toBe("token is unknown, expired or revoked")
    })))

  it.effect("RFC 9068: tokens are issued with typ at+jwt; tokens issued before (typ JWT) still verify until they expire; other types are refused", () =>
    using()(Effect.gen(function*() {
      const { accessToken, tokens } = yield* tokensFor()
      expect(decodeProtectedHeader(accessToken).typ).toBe("at+jwt")
      const claims = decodeJwt(accessToken)
      expect(Object.keys(claims)).toEqual(expect.arrayContaining(["iss", "exp", "aud", "sub", "client_id", "iat", "jti", "scope"]))

      // The same claims signed the way this server signed before RFC 9068: header typ JWT.
      const jwks = yield* Jwks
      const legacy = yield* jwks.sign({ ...claims })
      expect(decodeProtectedHeader(legacy.token).typ).toBe("JWT")
      expect((yield* verifyAccessToken(legacy.token)).grantId).toBe(tokens.grantId)
      const untyped = yield* jwks.sign({ ...claims }, { typ: "application/at+jwt" })
      expect((yield* verifyAccessToken(untyped.token)).subject).toBe("alice")
      for (const typ of ["dpop+jwt", "logout+jwt", "JOSE"]) {
        const other = yield* jwks.sign({ ...claims }, { typ })
        expect((yield* Effect.flip(verifyAccessToken(other.token))).description).toBe("token is not an access token")
      }
      // Until they expire: the legacy token fails like any other once its exp has passed.
      yield* TestClock.adjust("1 hour")
      expect((yield* Effect.flip(verifyAccessToken(legacy.token))).description).toBe("token has expired")
    })))

  it.effect("verification errors render as seed 002's invalid_token response", () =>
    using()(Effect.gen(function*() {
      const { accessToken } = yield* tokensFor()
      yield* TestClock.adjust("2 hours")
      const error = yield* Effect.flip(verifyAccessToken(accessToken))
      if (error._tag !== "InvalidToken") throw new Error("expected InvalidToken")
      const rendered = renderOAuthError(error, { challenge: { scheme: "Bearer", tokenPresented: true } })
      expect(rendered.status).toBe(401)
      expect(rendered.body).toEqual({
        error: "invalid_token",
        error_description: "token has expired",
        error_uri: "https://datatracker.ietf.org/doc/html/rfc6750#section-3.1"
      })
    })))
})
