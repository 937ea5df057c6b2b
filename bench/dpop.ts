/**
 * DPoP (RFC 9449) on the request path, called the way the server calls it
 * (one `ManagedRuntime` over the memory stores, one `runPromise` per
 * operation), ES256 proofs made by jose beforehand:
 *
 * - `checkDpopProof` (every stateless check of §4.3 and the key thumbprint;
 *   the client's key imported once, as the server's `DpopKeyCache` does)
 *   beside raw jose doing the same cryptography per call: `jwtVerify` with
 *   `EmbeddedJWK` and `typ: dpop+jwt`, then `calculateJwkThumbprint`;
 * - the resource's whole check of a DPoP request, `verifyPresentedToken`
 *   (the proof with `ath`, the access token, the binding, the `jti` written
 *   to the ReplayCache; a fresh proof per operation) beside the same server's
 *   check of a Bearer request (`verifyAccessToken`, token cache on): the ratio
 *   is what DPoP costs a resource request.
 */
import { Effect, Layer, Logger, LogLevel, ManagedRuntime, Redacted } from "effect"
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify } from "jose"
import { randomBytes } from "node:crypto"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import * as MemoryStore from "../src/layers/memory/index.ts"
import { issueAccessToken, verifyAccessToken } from "../src/oauth/accessTokens.ts"
import { OAuthConfig } from "../src/oauth/config.ts"
import { checkDpopProof, DpopKeyCache } from "../src/oauth/dpop.ts"
import * as JwksLive from "../src/oauth/jwks.ts"
import { verifyPresentedToken } from "../src/oauth/presentedToken.ts"
import { TokenStore } from "../src/services/TokenStore.ts"
import { ath, dpopKey, signProof } from "../test/support/dpop.ts"
import { type Case, formatTable, register, type RunOptions, runCases } from "./harness.ts"

const ISSUER = "https://auth.example"
const AUDIENCE = "https://mcp.example/mcp"
const TOKEN_URL = `${ISSUER}/token`
const options: RunOptions = { rounds: 7, roundMs: 300, warmupMs: 200 }
/** Enough fresh proofs for every operation of the resource case (each is accepted once). */
const POOL = 12_000

const run = async (): Promise<string> => {
  const runtime = ManagedRuntime.make(
    Layer.mergeAll(
      OAuthConfig.layer({ issuer: ISSUER, resources: [AUDIENCE], dpop: { proofMaxAge: "10 minutes" } }),
      JwksLive.layer({ algorithm: "ES256" }),
      DpopKeyCache.layer()
    ).pipe(
      Layer.provideMerge(MemoryStore.layer().pipe(Layer.provideMerge(NodeCrypto.layerEphemeral))),
      Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
    )
  )
  try {
    const key = await dpopKey("ES256")
    const iat = Math.floor(Date.now() / 1000)
    const tokenProof = await signProof(key, { htm: "POST", htu: TOKEN_URL, iat })
    const tokenInput = { proof: tokenProof, method: "POST", urls: [TOKEN_URL] }

    const grant = await runtime.runPromise(
      Effect.flatMap(TokenStore, (store) => store.saveGrant({ id: "bench-grant", clientId: "client-1", subject: "alice", scopes: ["read"] }))
    )
    const subject = { grantId: grant.id, clientId: "client-1", subject: "alice", scopes: ["read"], resource: AUDIENCE }
    const bound = Redacted.value((await runtime.runPromise(issueAccessToken({ ...subject, jkt: key.jkt }))).token)
    const bearer = Redacted.value((await runtime.runPromise(issueAccessToken(subject))).token)
    const proofs = await Promise.all(Array.from({ length: POOL }, () =>
      signProof(key, { htm: "POST", htu: AUDIENCE, iat, ath: ath(bound), jti: randomBytes(16).toString("base64url") })))
    const resource = (i: number) => {
      const proof = proofs[i]
      if (proof === undefined) throw new Error(`the pool of ${POOL} proofs ran out`)
      return { scheme: "DPoP" as const, token: bound, dpop: { proof, method: "POST", urls: [AUDIENCE] } }
    }
    const joseCheck = async () => {
      const { payload, protectedHeader } = await jwtVerify(tokenProof, EmbeddedJWK, { typ: "dpop+jwt", algorithms: ["ES256"] })
      if (payload["htu"] !== TOKEN_URL || payload["htm"] !== "POST" || protectedHeader.jwk === undefined) throw new Error("claims")
      return calculateJwkThumbprint(protectedHeader.jwk, "sha256")
    }

    // Every side accepts before anything is measured.
    const checked = await runtime.runPromise(checkDpopProof(tokenInput, "token"))
    if (checked.jkt !== await joseCheck()) throw new Error("thumbprints differ")
    await runtime.runPromise(verifyAccessToken(bearer, { expectedAudience: AUDIENCE }))

    let next = 0
    const cases: ReadonlyArray<Case> = [
      {
        name: "ES256 proof: checkDpopProof vs jose jwtVerify(EmbeddedJWK) + thumbprint",
        ours: () => runtime.runPromise(checkDpopProof(tokenInput, "token")),
        baseline: joseCheck
      },
      {
        name: "resource request: DPoP verifyPresentedToken (fresh proof, jti remembered) vs Bearer verifyAccessToken",
        ours: () => runtime.runPromise(verifyPresentedToken(resource(next++), { expectedAudience: AUDIENCE })),
        baseline: () => runtime.runPromise(verifyAccessToken(bearer, { expectedAudience: AUDIENCE }))
      }
    ]
    const rows = await runCases(cases, options)
    return formatTable("DPoP: the proof check and a DPoP resource request (memory stores, runPromise per op)", rows, options)
  } finally {
    await runtime.dispose()
  }
}

register({ name: "dpop", run })
