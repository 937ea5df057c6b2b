/**
 * DPoP (RFC 9449) in the engine: the proof checker (§4.3) with TestClock
 * driving the `iat` window and the nonce windows, the `jti` replay check in
 * the ReplayCache, DPoP-bound tokens at the token endpoint (§5: the access
 * token's `cnf.jkt`, a public client's refresh chain bound to the key) and at
 * the resource (§7: the DPoP scheme, `ath`, the binding, no downgrade to
 * Bearer), and introspection (§6.2). Proofs are made by `test/support/dpop.ts`
 * with jose and node:crypto, independently of the checker.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Exit, Option, Redacted, TestClock } from "effect"
import { decodeJwt } from "jose"
import { randomBytes } from "node:crypto"
import { OAuthConfig } from "../../src/oauth/config.ts"
import {
  checkDpopProof,
  currentDpopNonce,
  DpopKeyCache,
  type DpopProofInput,
  normalizeHtu,
  rememberDpopProof
} from "../../src/oauth/dpop.ts"
import { verifyPresentedToken } from "../../src/oauth/presentedToken.ts"
import { registerClient, registrationResponse } from "../../src/oauth/registration.ts"
import { introspect } from "../../src/oauth/revocation.ts"
import { exchangeCode, refreshTokens, tokenResponse } from "../../src/oauth/tokenEndpoint.ts"
import { TokenStore } from "../../src/services/TokenStore.ts"
import { ath, dpopKey, type DpopKey, hmacProof, type ProofClaims, signProof, unsignedProof } from "../support/dpop.ts"
import { approve, authorize } from "../../src/oauth/authorize.ts"
import {
  authorizationRequest,
  codeFor,
  credentials,
  type EngineOptions,
  ISSUER,
  pkce,
  publicClientMetadata,
  REDIRECT,
  registerPublic,
  RESOURCE,
  using
} from "./fixtures.ts"

const TOKEN_URL = `${ISSUER}/token`

/**
 * The TestClock's time in whole seconds, as a client writes `iat`. Tests
 * start at the epoch and move forward with `TestClock.adjust` (jumping decades
 * ahead would run decades of the stores' daily sweeps).
 */
const nowSeconds = Effect.map(Clock.currentTimeMillis, (ms) => Math.floor(ms / 1000))

/** A proof for `POST /token` made now (claims overridable). */
const tokenProof = (key: DpopKey, overrides: Partial<ProofClaims> = {}, header: Record<string, unknown> = {}) =>
  Effect.flatMap(nowSeconds, (iat) => Effect.promise(() => signProof(key, { htm: "POST", htu: TOKEN_URL, iat, ...overrides }, header)))

/** The proof as the token endpoint would receive it. */
const atToken = (proof: string, method = "POST", urls: ReadonlyArray<string> = [TOKEN_URL]): DpopProofInput => ({ proof, method, urls })

/** The failure of a check, as `{ tag, description }`. */
const refusal = <A, E extends { readonly _tag: string; readonly description?: string | undefined }, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.flip(effect), (error) => ({ tag: error._tag, description: error.description }))

const key = () => Effect.promise(() => dpopKey())

describe("checkDpopProof (RFC 9449 §4.3)", () => {
  it.effect("accepts a well-formed proof and names its key by RFC 7638 thumbprint", () =>
    using()(Effect.gen(function*() {
      for (const alg of ["ES256", "ES384", "PS256", "RS256", "EdDSA"]) {
        const k = yield* Effect.promise(() => dpopKey(alg))
        const checked = yield* checkDpopProof(atToken(yield* tokenProof(k)), "token")
        expect(checked).toMatchObject({ jkt: k.jkt, alg })
      }
    })))

  it.effect("refuses what is not exactly one compact JWT, or is too long", () =>
    using()(Effect.gen(function*() {
      const k = yield* key()
      const proof = yield* tokenProof(k)
      for (const bad of ["", "abc", `${proof}, ${proof}`, `${proof}.x`, `${proof.slice(0, 10)}*${proof.slice(11)}`, `${proof}${"A".repeat(8192)}`]) {
        expect((yield* refusal(checkDpopProof(atToken(bad), "token"))).tag).toBe("InvalidDpopProof")
      }
    })))

  it.effect("refuses a wrong typ, alg none, HS256, an alg the server does not accept, and a missing or private jwk", () =>
    using({ oauth: { dpop: { algorithms: ["ES256", "PS256"] } } })(Effect.gen(function*() {
      const k = yield* key()
      const iat = yield* nowSeconds
      const claims = { htm: "POST", htu: TOKEN_URL, iat }
      const cases: Array<[string, string]> = [
        [yield* tokenProof(k, {}, { typ: "JWT" }), "typ must be dpop+jwt"],
        [yield* tokenProof(k, {}, { typ: "at+jwt" }), "typ must be dpop+jwt"],
        [`${unsignedProof(k, claims)}AAAA`, "alg must be one of ES256 PS256"],
        [hmacProof(randomBytes(32), claims), "alg must be one of ES256 PS256"],
        [yield* Effect.promise(() => dpopKey("EdDSA").then((ed) => signProof(ed, claims))), "alg must be one of ES256 PS256"],
        [yield* tokenProof(k, {}, { jwk: undefined }), "the proof must carry its public key in the jwk header"],
        [yield* tokenProof(k, {}, { jwk: k.privateJwk }), "the proof's jwk must not contain a private key"],
        [yield* tokenProof(k, {}, { jwk: { kty: "oct", k: "c2VjcmV0" } }), "the proof's jwk must not contain a private key"]
      ]
      for (const [proof, description] of cases) {
        expect(yield* refusal(checkDpopProof(atToken(proof), "token"))).toEqual({
          tag: "InvalidDpopProof",
          description: expect.stringContaining(description)
        })
      }
      // alg none with an empty signature is not even a compact JWS with three parts
      expect((yield* refusal(checkDpopProof(atToken(unsignedProof(k, claims)), "token"))).tag).toBe("InvalidDpopProof")
    })))

  it.effect("refuses a proof whose jwk is not the key that signed it", () =>
    using()(Effect.gen(function*() {
      const [signer, other] = [yield* key(), yield* key()]
      const proof = yield* tokenProof(signer, {}, { jwk: other.publicJwk })
      expect(yield* refusal(checkDpopProof(atToken(proof), "token")))
        .toEqual({ tag: "InvalidDpopProof", description: "the DPoP proof's signature does not verify with its jwk" })
    })))

  it.effect("requires jti (at most 256 characters), htm, htu and iat", () =>
    using()(Effect.gen(function*() {
      const k = yield* key()
      const iat = yield* nowSeconds
      const sign = (claims: Record<string, unknown>) =>
        Effect.promise(() => signProof(k, { htm: "POST", htu: TOKEN_URL, iat, ...claims } as ProofClaims))
      for (const claims of [{ jti: null }, { htm: undefined }, { htu: undefined }, { iat: undefined }, { iat: "0" }, { jti: 7 }]) {
        expect(yield* refusal(checkDpopProof(atToken(yield* sign(claims)), "token")))
          .toEqual({ tag: "InvalidDpopProof", description: "the DPoP proof must carry jti, htm, htu and iat" })
      }
      for (const jti of ["", "x".repeat(257)]) {
        expect((yield* refusal(checkDpopProof(atToken(yield* sign({ jti })), "token"))).description).toContain("jti must be 1 to 256")
      }
      yield* checkDpopProof(atToken(yield* sign({ jti: "x".repeat(256) })), "token")
    })))

  it.effect("htm must be the request's method and htu its URI (query and fragment ignored, RFC 3986 normalization)", () =>
    using()(Effect.gen(function*() {
      const k = yield* key()
      const wrongMethod = yield* refusal(checkDpopProof(atToken(yield* tokenProof(k, { htm: "GET" })), "token"))
      expect(wrongMethod.description).toBe("the DPoP proof's htm is not this request's method")
      expect((yield* refusal(checkDpopProof(atToken(yield* tokenProof(k, { htm: "post" })), "token"))).tag).toBe("InvalidDpopProof")
      for (const htu of [`${ISSUER}/revoke`, "https://evil.example/token", "http://auth.example/token", `${ISSUER}/token/`, `${ISSUER}:8443/token`, "token", "ftp://auth.example/token"]) {
        expect(yield* refusal(checkDpopProof(atToken(yield* tokenProof(k, { htu })), "token")))
          .toEqual({ tag: "InvalidDpopProof", description: "the DPoP proof's htu is not this request's URI" })
      }
      for (const htu of [`${ISSUER}/token?x=1`, `${ISSUER}/token#f`, "HTTPS://AUTH.EXAMPLE:443/token", `${ISSUER}/a/../token`, `${ISSUER}/%74oken`]) {
        yield* checkDpopProof(atToken(yield* tokenProof(k, { htu })), "token")
      }
      // An alias of the server the request reached counts too.
      yield* checkDpopProof(atToken(yield* tokenProof(k, { htu: "http://127.0.0.1:9000/token" }), "POST", [TOKEN_URL, "http://127.0.0.1:9000/token"]), "token")
    })))

  it("normalizeHtu", () => {
    expect(normalizeHtu("HTTPS://Auth.Example:443/a/./b/../c?q#f")).toBe("https://auth.example/a/c")
    expect(normalizeHtu("http://h:80")).toBe("http://h/")
    expect(normalizeHtu("https://h/%7euser/%2f")).toBe("https://h/~user/%2F")
    expect(normalizeHtu("mailto:a@b")).toBeUndefined()
    expect(normalizeHtu("/token")).toBeUndefined()
  })

  it.effect("iat: accepted up to proofMaxAge old (exclusive) and clockSkew ahead, by TestClock", () =>
    using()(Effect.gen(function*() {
      const k = yield* key()
      const proof = yield* tokenProof(k)
      yield* TestClock.adjust("59999 millis")
      yield* checkDpopProof(atToken(proof), "token")
      yield* TestClock.adjust("1 millis")
      expect(yield* refusal(checkDpopProof(atToken(proof), "token")))
        .toEqual({ tag: "InvalidDpopProof", description: "the DPoP proof is too old (iat)" })
      const now = yield* nowSeconds
      yield* checkDpopProof(atToken(yield* tokenProof(k, { iat: now + 5 })), "token")
      expect(yield* refusal(checkDpopProof(atToken(yield* tokenProof(k, { iat: now + 6 })), "token")))
        .toEqual({ tag: "InvalidDpopProof", description: "the DPoP proof's iat is in the future" })
    })))

  it.effect("the window is configurable", () =>
    using({ oauth: { dpop: { proofMaxAge: "10 seconds", clockSkew: 0 } } })(Effect.gen(function*() {
      const k = yield* key()
      const proof = yield* tokenProof(k)
      yield* TestClock.adjust("10 seconds")
      expect((yield* refusal(checkDpopProof(atToken(proof), "token"))).description).toBe("the DPoP proof is too old (iat)")
      expect((yield* refusal(checkDpopProof(atToken(yield* tokenProof(k, { iat: (yield* nowSeconds) + 1 })), "token"))).description)
        .toBe("the DPoP proof's iat is in the future")
    })))

  it.effect("with an access token: ath must be its hash", () =>
    using()(Effect.gen(function*() {
      const k = yield* key()
      const urls = [RESOURCE]
      const proofFor = (claims: Partial<ProofClaims>) =>
        Effect.flatMap(nowSeconds, (iat) => Effect.promise(() => signProof(k, { htm: "POST", htu: RESOURCE, iat, ...claims })))
      yield* checkDpopProof({ proof: yield* proofFor({ ath: ath("the-token") }), method: "POST", urls }, "resource", "the-token")
      expect((yield* refusal(checkDpopProof({ proof: yield* proofFor({}), method: "POST", urls }, "resource", "the-token"))).description)
        .toBe("the DPoP proof must carry ath, the hash of the access token")
      expect((yield* refusal(checkDpopProof({ proof: yield* proofFor({ ath: ath("another") }), method: "POST", urls }, "resource", "the-token"))).description)
        .toBe("the DPoP proof's ath is not the hash of this access token")
    })))
})

describe("DpopKeyCache: a client's key is imported once", () => {
  it.effect("cached keys still verify every signature, and the cache is bounded", () =>
    Effect.provide(
      using()(Effect.gen(function*() {
        const cache = yield* DpopKeyCache
        const k = yield* key()
        const first = yield* checkDpopProof(atToken(yield* tokenProof(k)), "token")
        const id = `ES256 ${JSON.stringify(k.publicJwk)}`
        expect(cache.get(id)?.jkt).toBe(k.jkt)
        expect((yield* checkDpopProof(atToken(yield* tokenProof(k)), "token")).jkt).toBe(first.jkt)
        // A cached jwk does not vouch for a proof someone else signed in its name.
        const forger = yield* key()
        expect(yield* refusal(checkDpopProof(atToken(yield* tokenProof(forger, {}, { jwk: k.publicJwk })), "token")))
          .toEqual({ tag: "InvalidDpopProof", description: "the DPoP proof's signature does not verify with its jwk" })
        const second = yield* key()
        yield* checkDpopProof(atToken(yield* tokenProof(second)), "token")
        const third = yield* key()
        yield* checkDpopProof(atToken(yield* tokenProof(third)), "token")
        expect(cache.get(id)).toBeUndefined() // the first imported of three, with room for two
        expect(cache.get(`ES256 ${JSON.stringify(third.publicJwk)}`)?.jkt).toBe(third.jkt)
      })),
      DpopKeyCache.layer(2)
    ))
})

describe("rememberDpopProof: a proof is used once (RFC 9449 §11.1)", () => {
  it.effect("the second presentation is refused, for as long as the proof could be accepted", () =>
    using()(Effect.gen(function*() {
      const k = yield* key()
      const checked = yield* checkDpopProof(atToken(yield* tokenProof(k, { jti: "once" })), "token")
      yield* rememberDpopProof(checked)
      expect(yield* refusal(rememberDpopProof(checked))).toEqual({ tag: "InvalidDpopProof", description: "the DPoP proof was already used" })
      // The same jti under another key is another proof.
      const other = yield* key()
      yield* rememberDpopProof(yield* checkDpopProof(atToken(yield* tokenProof(other, { jti: "once" })), "token"))
      yield* TestClock.adjust("64999 millis")
      expect((yield* refusal(rememberDpopProof(checked))).tag).toBe("InvalidDpopProof")
      yield* TestClock.adjust("1 millis")
      yield* rememberDpopProof(checked) // forgotten only once the proof is too old to be accepted anyway
    })))

  it.effect("100 concurrent presentations of one proof: exactly one passes", () =>
    using()(Effect.gen(function*() {
      const checked = yield* checkDpopProof(atToken(yield* tokenProof(yield* key())), "token")
      const exits = yield* Effect.all(Array.from({ length: 100 }, () => Effect.exit(rememberDpopProof(checked))), { concurrency: "unbounded" })
      expect(exits.filter(Exit.isSuccess)).toHaveLength(1)
    })))
})

describe("server nonces (RFC 9449 §8, §9)", () => {
  const nonces = { oauth: { dpop: { requireNonce: true, nonceLifetime: "5 minutes" } } } satisfies EngineOptions

  it.effect("a proof without the nonce gets use_dpop_nonce with one; with it, it passes, for its window and the next", () =>
    using(nonces)(Effect.gen(function*() {
      const k = yield* key()
      const missing = yield* Effect.flip(checkDpopProof(atToken(yield* tokenProof(k)), "token"))
      expect(missing._tag).toBe("UseDpopNonce")
      const nonce = missing._tag === "UseDpopNonce" ? missing.nonce ?? "" : ""
      expect(nonce).toMatch(/^[0-9a-z]+\.[A-Za-z0-9_-]{32}$/)
      expect(Option.getOrThrow(yield* currentDpopNonce("token"))).toBe(nonce)
      yield* checkDpopProof(atToken(yield* tokenProof(k, { nonce })), "token")
      yield* TestClock.adjust("5 minutes")
      yield* checkDpopProof(atToken(yield* tokenProof(k, { nonce })), "token")
      expect(Option.getOrThrow(yield* currentDpopNonce("token"))).not.toBe(nonce)
      yield* TestClock.adjust("5 minutes")
      const expired = yield* Effect.flip(checkDpopProof(atToken(yield* tokenProof(k, { nonce })), "token"))
      expect(expired).toMatchObject({ _tag: "UseDpopNonce", nonce: Option.getOrThrow(yield* currentDpopNonce("token")) })
    })))

  it.effect("a nonce is accepted only where it was issued, and a forged one never", () =>
    using(nonces)(Effect.gen(function*() {
      const k = yield* key()
      const tokenNonce = Option.getOrThrow(yield* currentDpopNonce("token"))
      const resourceNonce = Option.getOrThrow(yield* currentDpopNonce("resource"))
      expect(tokenNonce).not.toBe(resourceNonce)
      const iat = yield* nowSeconds
      const atResource = (nonce: string) =>
        Effect.promise(() => signProof(k, { htm: "GET", htu: RESOURCE, iat, ath: ath("t"), nonce }))
      yield* checkDpopProof({ proof: yield* atResource(resourceNonce), method: "GET", urls: [RESOURCE] }, "resource", "t")
      for (const nonce of [tokenNonce, `${tokenNonce.split(".")[0]}.${"A".repeat(32)}`, "0.x", "junk"]) {
        expect((yield* Effect.flip(checkDpopProof({ proof: yield* atResource(nonce), method: "GET", urls: [RESOURCE] }, "resource", "t")))._tag)
          .toBe("UseDpopNonce")
      }
    })))

  it.effect("without requireNonce there is no nonce and none is checked", () =>
    using()(Effect.gen(function*() {
      expect(yield* currentDpopNonce("token")).toEqual(Option.none())
      yield* checkDpopProof(atToken(yield* tokenProof(yield* key(), { nonce: "anything" })), "token")
    })))

  it.effect("options that cannot work are refused when the layer is built", () =>
    Effect.gen(function*() {
      for (const dpop of [{ algorithms: [] }, { algorithms: ["HS256"] }, { proofMaxAge: 0 }, { clockSkew: Infinity }, { requireNonce: true, nonceLifetime: 0 }]) {
        const exit = yield* Effect.exit(Effect.provide(OAuthConfig, OAuthConfig.layer({ issuer: ISSUER, dpop: dpop as never })))
        expect(Exit.isFailure(exit), JSON.stringify(dpop)).toBe(true)
      }
    }))
})

/** A public client's code exchanged with a DPoP proof of `k`. */
const dpopTokens = (k: DpopKey) =>
  Effect.gen(function*() {
    const flow = yield* codeFor()
    const issued = yield* exchangeCode({
      client: credentials(flow.client.clientId),
      code: flow.code,
      redirectUri: REDIRECT,
      codeVerifier: pkce().verifier,
      dpop: atToken(yield* tokenProof(k))
    })
    return { ...flow, issued, accessToken: Redacted.value(issued.accessToken), refreshToken: Redacted.value(issued.refreshToken ?? Redacted.make("")) }
  })

const refreshWith = (clientId: string, refreshToken: string, proof?: string) =>
  refreshTokens({ client: credentials(clientId), refreshToken, ...(proof === undefined ? {} : { dpop: atToken(proof) }) })

describe("the token endpoint with DPoP (RFC 9449 §5)", () => {
  it.effect("binds the access token (cnf.jkt, token_type DPoP) and a public client's refresh chain to the key", () =>
    using()(Effect.gen(function*() {
      const k = yield* key()
      const { accessToken, client, issued, refreshToken } = yield* dpopTokens(k)
      expect(tokenResponse(issued)["token_type"]).toBe("DPoP")
      expect(decodeJwt(accessToken)["cnf"]).toEqual({ jkt: k.jkt })
      const record = yield* (yield* TokenStore).getRefreshToken(refreshToken)
      expect(Option.getOrThrow(record).jkt).toBe(k.jkt)

      const rotated = yield* refreshWith(client.clientId, refreshToken, yield* tokenProof(k))
      expect(rotated.tokenType).toBe("DPoP")
      expect(decodeJwt(Redacted.value(rotated.accessToken))["cnf"]).toEqual({ jkt: k.jkt })
      const successor = Redacted.value(rotated.refreshToken ?? Redacted.make(""))
      expect(Option.getOrThrow(yield* (yield* TokenStore).getRefreshToken(successor)).jkt).toBe(k.jkt)
    })))

  it.effect("a stolen refresh token: without a proof, or with another key, invalid_grant; the owner still refreshes", () =>
    using()(Effect.gen(function*() {
      const k = yield* key()
      const { client, refreshToken } = yield* dpopTokens(k)
      const without = yield* refusal(refreshWith(client.clientId, refreshToken))
      expect(without).toEqual({ tag: "InvalidGrant", description: "refresh token is bound to a DPoP key: present a DPoP proof of that key" })
      const thief = yield* key()
      expect((yield* refusal(refreshWith(client.clientId, refreshToken, yield* tokenProof(thief)))).tag).toBe("InvalidGrant")
      const owner = yield* refreshWith(client.clientId, refreshToken, yield* tokenProof(k))
      expect(owner.tokenType).toBe("DPoP")
    })))

  it.effect("a replayed proof is refused at the token endpoint (and a replayed code-exchange proof revokes the grant)", () =>
    using()(Effect.gen(function*() {
      const k = yield* key()
      const { client, refreshToken } = yield* dpopTokens(k)
      const proof = yield* tokenProof(k)
      const first = yield* refreshWith(client.clientId, refreshToken, proof)
      const successor = Redacted.value(first.refreshToken ?? Redacted.make(""))
      expect(yield* refusal(refreshWith(client.clientId, successor, proof)))
        .toEqual({ tag: "InvalidDpopProof", description: "the DPoP proof was already used" })

      const flow = yield* codeFor()
      const codeProof = yield* tokenProof(k)
      yield* rememberDpopProof(yield* checkDpopProof(atToken(codeProof), "token")) // seen before
      const exchange = yield* refusal(exchangeCode({
        client: credentials(flow.client.clientId),
        code: flow.code,
        redirectUri: REDIRECT,
        codeVerifier: pkce().verifier,
        dpop: atToken(codeProof)
      }))
      expect(exchange.tag).toBe("InvalidDpopProof")
      expect(yield* (yield* TokenStore).getGrant(flow.approved.grant.id)).toEqual(Option.none())
    })))

  it.effect("an invalid proof leaves the code unconsumed, so the client can retry (e.g. with the nonce it was given)", () =>
    using({ oauth: { dpop: { requireNonce: true } } })(Effect.gen(function*() {
      const k = yield* key()
      const flow = yield* codeFor()
      const request = (proof: string) =>
        exchangeCode({ client: credentials(flow.client.clientId), code: flow.code, redirectUri: REDIRECT, codeVerifier: pkce().verifier, dpop: atToken(proof) })
      const told = yield* Effect.flip(request(yield* tokenProof(k)))
      expect(told._tag).toBe("UseDpopNonce")
      expect((yield* Effect.flip(request(yield* tokenProof(k, { htm: "PUT" }))))._tag).toBe("InvalidDpopProof")
      const nonce = told._tag === "UseDpopNonce" ? told.nonce ?? "" : ""
      const issued = yield* request(yield* tokenProof(k, { nonce }))
      expect(issued.tokenType).toBe("DPoP")
    })))

  it.effect("a confidential client's refresh token is not bound; its new access tokens follow each request's proof", () =>
    using()(Effect.gen(function*() {
      const registration = yield* registerClient({
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: "client_secret_post",
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        scope: "read write"
      })
      const client = { clientId: registration.client.clientId, clientSecret: Option.getOrThrow(registration.clientSecret), method: "client_secret_post" as const }
      const pending = yield* authorize(authorizationRequest(client.clientId))
      const approved = yield* approve({ transactionId: pending.transaction.id, subject: "alice" })
      const k = yield* key()
      const issued = yield* exchangeCode({
        client,
        code: approved.redirect.params["code"] as string,
        redirectUri: REDIRECT,
        codeVerifier: pkce().verifier,
        dpop: atToken(yield* tokenProof(k))
      })
      expect(issued.tokenType).toBe("DPoP")
      const refreshToken = Redacted.value(issued.refreshToken ?? Redacted.make(""))
      expect(Option.getOrThrow(yield* (yield* TokenStore).getRefreshToken(refreshToken)).jkt).toBeUndefined()
      const bearer = yield* refreshTokens({ client, refreshToken })
      expect(bearer.tokenType).toBe("Bearer")
      expect(decodeJwt(Redacted.value(bearer.accessToken))["cnf"]).toBeUndefined()
    })))

  it.effect("a grace-window retry gets the same pair only with the first attempt's key", () =>
    using()(Effect.gen(function*() {
      const k = yield* key()
      const { client, refreshToken } = yield* dpopTokens(k)
      const first = yield* refreshWith(client.clientId, refreshToken, yield* tokenProof(k))
      const again = yield* refreshWith(client.clientId, refreshToken, yield* tokenProof(k))
      expect(Redacted.value(again.accessToken)).toBe(Redacted.value(first.accessToken))
      expect(again.tokenType).toBe("DPoP")
    })))

  it.effect("dpop_jkt (§10): the code is exchanged only with a proof of the named key; otherwise invalid_grant and the grant is revoked", () =>
    using()(Effect.gen(function*() {
      const k = yield* key()
      const exchange = (code: string, proof?: string) =>
        exchangeCode({
          client: credentials(client.clientId),
          code,
          redirectUri: REDIRECT,
          codeVerifier: pkce().verifier,
          ...(proof === undefined ? {} : { dpop: atToken(proof) })
        })
      const first = yield* codeFor({ dpopJkt: k.jkt })
      const client = first.client
      expect(first.pending.transaction.dpopJkt).toBe(k.jkt)
      const issued = yield* exchange(first.code, yield* tokenProof(k))
      expect(issued.tokenType).toBe("DPoP")
      expect(decodeJwt(Redacted.value(issued.accessToken))["cnf"]).toEqual({ jkt: k.jkt })

      const bound = (overrides: Parameters<typeof authorizationRequest>[1]) =>
        Effect.gen(function*() {
          const pending = yield* authorize(authorizationRequest(client.clientId, overrides))
          expect(pending.transaction.dpopJkt).toBe(k.jkt)
          const approved = yield* approve({ transactionId: pending.transaction.id, subject: "alice" })
          return { code: approved.redirect.params["code"] as string, grantId: approved.grant.id }
        })
      const withoutProof = yield* bound({ dpopJkt: k.jkt })
      expect(yield* refusal(exchange(withoutProof.code))).toEqual({
        tag: "InvalidGrant",
        description: "the authorization request named a DPoP key (dpop_jkt): present a DPoP proof of that key"
      })
      expect(yield* (yield* TokenStore).getGrant(withoutProof.grantId)).toEqual(Option.none())
      const withAnother = yield* bound({ dpopJkt: k.jkt })
      expect((yield* refusal(exchange(withAnother.code, yield* tokenProof(yield* key())))).tag).toBe("InvalidGrant")
      expect(yield* (yield* TokenStore).getGrant(withAnother.grantId)).toEqual(Option.none())
    })))

  it.effect("dpop_jkt must be a JWK SHA-256 thumbprint: anything else is sent back to the client as invalid_request", () =>
    using()(Effect.gen(function*() {
      const client = yield* registerPublic()
      for (const bad of ["", "short", "x".repeat(44), `${"a".repeat(42)}=`, `${"a".repeat(42)}+`]) {
        const error = yield* Effect.flip(authorize(authorizationRequest(client.clientId, { dpopJkt: bad })))
        expect(error._tag).toBe("AuthorizationErrorRedirect")
        if (error._tag === "AuthorizationErrorRedirect") {
          expect(error.redirect.params).toMatchObject({ error: "invalid_request", error_description: "dpop_jkt is not a JWK SHA-256 thumbprint" })
        }
      }
    })))

  it.effect("dpop_bound_access_tokens (§5.2): registered and kept; that client's token requests without a proof are refused", () =>
    using()(Effect.gen(function*() {
      const registration = yield* registerClient({ ...publicClientMetadata, dpop_bound_access_tokens: true })
      expect(registrationResponse(registration)["dpop_bound_access_tokens"]).toBe(true)
      const clientId = registration.client.clientId
      expect((yield* Effect.flip(registerClient({ ...publicClientMetadata, dpop_bound_access_tokens: "yes" })))._tag).toBe("InvalidClientMetadata")
      const pending = yield* authorize(authorizationRequest(clientId))
      const approved = yield* approve({ transactionId: pending.transaction.id, subject: "alice" })
      const code = approved.redirect.params["code"] as string
      const request = { client: credentials(clientId), code, redirectUri: REDIRECT, codeVerifier: pkce().verifier }
      expect(yield* refusal(exchangeCode(request))).toEqual({
        tag: "InvalidRequest",
        description: "this client registered dpop_bound_access_tokens: its token requests need a DPoP proof"
      })
      // Refused before the code is touched: the client can still send it with a proof.
      const k = yield* key()
      const issued = yield* exchangeCode({ ...request, dpop: atToken(yield* tokenProof(k)) })
      expect(issued.tokenType).toBe("DPoP")
      const refreshToken = Redacted.value(issued.refreshToken ?? Redacted.make(""))
      expect((yield* refusal(refreshWith(clientId, refreshToken))).tag).toBe("InvalidRequest")
      expect((yield* refreshWith(clientId, refreshToken, yield* tokenProof(k))).tokenType).toBe("DPoP")
    })))

  it.effect("without a DPoP header nothing changes: Bearer tokens, unbound refresh tokens", () =>
    using()(Effect.gen(function*() {
      const flow = yield* codeFor()
      const issued = yield* exchangeCode({ client: credentials(flow.client.clientId), code: flow.code, redirectUri: REDIRECT, codeVerifier: pkce().verifier })
      expect(issued.tokenType).toBe("Bearer")
      expect(decodeJwt(Redacted.value(issued.accessToken))["cnf"]).toBeUndefined()
      const refreshed = yield* refreshWith(flow.client.clientId, Redacted.value(issued.refreshToken ?? Redacted.make("")))
      expect(refreshed.tokenType).toBe("Bearer")
    })))
})

/** A resource request's proof for `token`, with `ath`. */
const resourceProof = (k: DpopKey, token: string, overrides: Partial<ProofClaims> = {}) =>
  Effect.flatMap(nowSeconds, (iat) => Effect.promise(() => signProof(k, { htm: "POST", htu: RESOURCE, iat, ath: ath(token), ...overrides })))

const atResource = (proof: string): DpopProofInput => ({ proof, method: "POST", urls: [RESOURCE] })

describe("verifyPresentedToken: the resource (RFC 9449 §7)", () => {
  for (const format of ["jwt", "opaque"] as const) {
    it.effect(`${format}: DPoP scheme + proof of the bound key passes; a replay, Bearer, no proof, another key do not`, () =>
      using({ oauth: { accessTokenFormat: format } })(Effect.gen(function*() {
        const k = yield* key()
        const { accessToken } = yield* dpopTokens(k)
        const options = { expectedAudience: RESOURCE, requiredScopes: ["read"] }
        const proof = yield* resourceProof(k, accessToken)
        const verified = yield* verifyPresentedToken({ scheme: "DPoP", token: accessToken, dpop: atResource(proof) }, options)
        expect(verified.jkt).toBe(k.jkt)

        const refused = (presented: Parameters<typeof verifyPresentedToken>[0]) => refusal(verifyPresentedToken(presented, options))
        expect(yield* refused({ scheme: "DPoP", token: accessToken, dpop: atResource(proof) }))
          .toEqual({ tag: "InvalidDpopProof", description: "the DPoP proof was already used" })
        expect(yield* refused({ scheme: "Bearer", token: accessToken }))
          .toEqual({ tag: "InvalidToken", description: "the access token is DPoP-bound: present it with the DPoP scheme and a DPoP proof" })
        expect((yield* refused({ scheme: "Bearer", token: accessToken, dpop: atResource(yield* resourceProof(k, accessToken)) })).tag)
          .toBe("InvalidToken")
        expect((yield* refused({ scheme: "DPoP", token: accessToken })).tag).toBe("InvalidDpopProof")
        const thief = yield* key()
        expect(yield* refused({ scheme: "DPoP", token: accessToken, dpop: atResource(yield* resourceProof(thief, accessToken)) }))
          .toEqual({ tag: "InvalidToken", description: "Invalid DPoP key binding" })
        expect((yield* refused({ scheme: "DPoP", token: accessToken, dpop: atResource(yield* resourceProof(k, accessToken, { htm: "GET" })) })).tag)
          .toBe("InvalidDpopProof")
        expect((yield* refused({ scheme: "DPoP", token: accessToken, dpop: atResource(yield* resourceProof(k, "another token")) })).tag)
          .toBe("InvalidDpopProof")
        // Binding is checked before scopes: a stolen token learns nothing from a 403.
        expect((yield* refusal(verifyPresentedToken({ scheme: "Bearer", token: accessToken }, { ...options, requiredScopes: ["admin"] }))).tag)
          .toBe("InvalidToken")
        expect((yield* refusal(verifyPresentedToken({ scheme: "DPoP", token: accessToken, dpop: atResource(yield* resourceProof(k, accessToken)) }, { ...options, requiredScopes: ["admin"] }))).tag)
          .toBe("InsufficientScope")
      })))
  }

  it.effect("a bearer token is refused under the DPoP scheme, and still works as Bearer", () =>
    using()(Effect.gen(function*() {
      const flow = yield* codeFor()
      const issued = yield* exchangeCode({ client: credentials(flow.client.clientId), code: flow.code, redirectUri: REDIRECT, codeVerifier: pkce().verifier })
      const token = Redacted.value(issued.accessToken)
      const k = yield* key()
      expect(yield* refusal(verifyPresentedToken({ scheme: "DPoP", token, dpop: atResource(yield* resourceProof(k, token)) }, { expectedAudience: RESOURCE })))
        .toEqual({ tag: "InvalidToken", description: "the access token is not DPoP-bound: present it with the Bearer scheme" })
      yield* verifyPresentedToken({ scheme: "Bearer", token }, { expectedAudience: RESOURCE })
    })))
})

describe("introspection of DPoP-bound tokens (RFC 9449 §6.2)", () => {
  for (const format of ["jwt", "opaque"] as const) {
    it.effect(`${format}: cnf.jkt and token_type DPoP; the refresh token reports its binding`, () =>
      using({ oauth: { accessTokenFormat: format } })(Effect.gen(function*() {
        const k = yield* key()
        const { accessToken, refreshToken } = yield* dpopTokens(k)
        expect(yield* introspect({ token: accessToken })).toMatchObject({ active: true, token_type: "DPoP", cnf: { jkt: k.jkt } })
        expect(yield* introspect({ token: refreshToken })).toMatchObject({ active: true, cnf: { jkt: k.jkt } })
      })))
  }
})
