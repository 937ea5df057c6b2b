/**
 * JWT signing and verification through our `Jwks` (RS256, ES256, EdDSA),
 * called the way a server calls it: one `ManagedRuntime` over the memory
 * stores, one `runtime.runPromise` per operation. Verification is measured
 * twice: with the cache of verified tokens (the same token presented again,
 * as an MCP client does for an hour: only its claims are re-checked) and
 * with the cache off (`verifyCacheSize: 0`: every call verifies the signature).
 *
 * Baselines, measured in the same run:
 * - raw `jose` with the same keys imported once beforehand (`SignJWT`,
 *   `jwtVerify` with the same algorithm pin, issuer, audience and required
 *   `exp`): the ratio is what our layer adds (Effect, the key lookup by `kid`,
 *   the header decode, `Clock`);
 * - raw `node:crypto` (`crypto.verify` over the signing input with a
 *   `KeyObject`, then `JSON.parse` and the same `exp`/`iss`/`aud` checks): the
 *   floor on Node, to show what `jose` itself costs (DEPENDENCIES.md: 2.4–4×).
 * - for the rows where our cache answers (the token seen before), the fair
 *   baseline is a cache too: a `Map` from the token to the claims `jose`
 *   verified once, then the same `exp`, `iss` and `aud` checks (and, for
 *   `verifyAccessToken`, the grant read from a `Map` with its expiry check).
 *   Comparing a cache hit with a full signature check would flatter us.
 */
import { Effect, Exit, Layer, Logger, LogLevel, ManagedRuntime, Option, Redacted, Scope } from "effect"
import { importJWK, type JWK, jwtVerify, SignJWT } from "jose"
import { createPublicKey, type JsonWebKey, type KeyObject, verify as nodeVerify } from "node:crypto"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import * as MemoryStore from "../src/layers/memory/index.ts"
import { verifyAccessToken } from "../src/oauth/accessTokens.ts"
import { OAuthConfig } from "../src/oauth/config.ts"
import * as JwksLive from "../src/oauth/jwks.ts"
import type { SigningAlgorithm } from "../src/schema/signingKey.ts"
import { Jwks } from "../src/services/Jwks.ts"
import { SigningKeyStore } from "../src/services/SigningKeyStore.ts"
import { TokenStore } from "../src/services/TokenStore.ts"
import { type Case, formatTable, register, type Row, type RunOptions, runCases } from "./harness.ts"

const ISSUER = "https://auth.example"
const AUDIENCE = "https://mcp.example/mcp"
const options: RunOptions = { rounds: 7, roundMs: 300, warmupMs: 200 }
const ALGORITHMS: ReadonlyArray<SigningAlgorithm> = ["RS256", "ES256", "EdDSA"]

const runtimeFor = (algorithm: SigningAlgorithm) =>
  ManagedRuntime.make(
    Layer.mergeAll(
      OAuthConfig.layer({ issuer: ISSUER, resources: [AUDIENCE] }),
      JwksLive.layer({ algorithm })
    ).pipe(
      Layer.provideMerge(MemoryStore.layer().pipe(Layer.provideMerge(NodeCrypto.layerEphemeral))),
      Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
    )
  )

const claims = (grantId: string) => {
  const now = Math.floor(Date.now() / 1000)
  return { iss: ISSUER, aud: AUDIENCE, sub: "alice", client_id: "client-1", gid: grantId, scope: "read write", iat: now, exp: now + 3600 }
}

const NODE_ALGORITHM: Record<SigningAlgorithm, { readonly digest: string | null; readonly dsaEncoding?: "ieee-p1363" }> = {
  RS256: { digest: "sha256" },
  ES256: { digest: "sha256", dsaEncoding: "ieee-p1363" },
  EdDSA: { digest: null }
}

/** Verify a compact JWS with `node:crypto` and check what `jwtVerify` checks for us. */
const rawNodeVerify = (token: string, key: KeyObject, alg: SigningAlgorithm): unknown => {
  const [header, payload, signature] = token.split(".")
  if (header === undefined || payload === undefined || signature === undefined) throw new Error("malformed")
  const parsedHeader = JSON.parse(Buffer.from(header, "base64url").toString()) as { alg?: string }
  if (parsedHeader.alg !== alg) throw new Error("alg")
  const { digest, dsaEncoding } = NODE_ALGORITHM[alg]
  const ok = nodeVerify(
    digest,
    Buffer.from(`${header}.${payload}`),
    dsaEncoding === undefined ? key : { key, dsaEncoding },
    Buffer.from(signature, "base64url")
  )
  if (!ok) throw new Error("signature")
  const body = JSON.parse(Buffer.from(payload, "base64url").toString()) as { exp?: number; iss?: string; aud?: string }
  if (typeof body.exp !== "number" || body.exp <= Math.floor(Date.now() / 1000)) throw new Error("exp")
  if (body.iss !== ISSUER || body.aud !== AUDIENCE) throw new Error("claims")
  return body
}

interface CachedClaims {
  readonly exp?: number
  readonly iss?: string
  readonly aud?: string | ReadonlyArray<string>
  readonly gid?: string
}

/** The cached-verification baseline: the claims verified once, looked up by token, with the claim checks redone. */
const cachedVerify = (cache: ReadonlyMap<string, CachedClaims>, token: string): CachedClaims => {
  const claims = cache.get(token)
  if (claims === undefined) throw new Error("not cached")
  if (typeof claims.exp !== "number" || claims.exp <= Math.floor(Date.now() / 1000)) throw new Error("exp")
  if (claims.iss !== ISSUER) throw new Error("iss")
  const aud = claims.aud
  if (aud !== AUDIENCE && !(Array.isArray(aud) && aud.includes(AUDIENCE))) throw new Error("aud")
  return claims
}

const casesFor = async (
  alg: SigningAlgorithm,
  runtime: ReturnType<typeof runtimeFor>,
  scope: Scope.Scope
): Promise<ReadonlyArray<Case>> => {
  const jwks = await runtime.runPromise(Jwks)
  // A second instance over the same stored keys, with the cache of verified tokens off.
  const uncached = await runtime.runPromise(Scope.extend(JwksLive.make({ algorithm: alg, verifyCacheSize: 0 }), scope))
  const set = Option.getOrThrow(await runtime.runPromise(Effect.flatMap(SigningKeyStore, (store) => store.get)))
  const active = set.keys.find((k) => k.status === "active")
  if (active === undefined) throw new Error("no active key")
  const privateKey = await importJWK(Redacted.value(active.privateJwk) as JWK, alg)
  const publicKey = await importJWK(active.publicJwk as JWK, alg)
  const nodeKey = createPublicKey({ key: active.publicJwk as JsonWebKey, format: "jwk" })
  const grant = await runtime.runPromise(
    Effect.flatMap(TokenStore, (store) => store.saveGrant({ id: "bench-grant", clientId: "client-1", subject: "alice", scopes: ["read"] }))
  )
  const token = (await runtime.runPromise(jwks.sign(claims(grant.id)))).token
  const verifyOptions = { issuer: ISSUER, audience: AUDIENCE }
  const joseVerify = () => jwtVerify(token, publicKey, { algorithms: [alg], requiredClaims: ["exp"], ...verifyOptions })

  // Every implementation accepts the token before anything is measured.
  await runtime.runPromise(jwks.verify(token, verifyOptions))
  await runtime.runPromise(uncached.verify(token, verifyOptions))
  const verifiedCache = new Map<string, CachedClaims>([[token, (await joseVerify()).payload as CachedClaims]])
  rawNodeVerify(token, nodeKey, alg)
  const grants = new Map([[grant.id, grant]])
  cachedVerify(verifiedCache, token)

  return [
    {
      name: `${alg} sign: Jwks.sign vs jose SignJWT`,
      ours: () => runtime.runPromise(jwks.sign(claims(grant.id))),
      baseline: () => new SignJWT(claims(grant.id)).setProtectedHeader({ alg, kid: active.kid, typ: "JWT" }).sign(privateKey)
    },
    {
      name: `${alg} verify, token seen before: cache vs Map + exp/iss/aud checks`,
      ours: () => runtime.runPromise(jwks.verify(token, verifyOptions)),
      baseline: () => cachedVerify(verifiedCache, token)
    },
    {
      name: `${alg} verify, cache off vs jose`,
      ours: () => runtime.runPromise(uncached.verify(token, verifyOptions)),
      baseline: joseVerify
    },
    {
      name: `${alg} verify, cache off vs node:crypto`,
      ours: () => runtime.runPromise(uncached.verify(token, verifyOptions)),
      baseline: () => rawNodeVerify(token, nodeKey, alg)
    },
    {
      name: `${alg} verifyAccessToken, token seen before (+ grant read) vs Map + checks + grant Map`,
      ours: () => runtime.runPromise(verifyAccessToken(token, { expectedAudience: AUDIENCE })),
      baseline: () => {
        const claims = cachedVerify(verifiedCache, token)
        const stored = grants.get(claims.gid ?? "")
        if (stored === undefined || Date.now() >= stored.expiresAt) throw new Error("revoked")
        return claims
      }
    }
  ]
}

const run = async (): Promise<string> => {
  const rows: Array<Row> = []
  for (const alg of ALGORITHMS) {
    const runtime = runtimeFor(alg)
    const scope = await runtime.runPromise(Scope.make())
    try {
      rows.push(...await runCases(await casesFor(alg, runtime, scope), options))
    } finally {
      await runtime.runPromise(Scope.close(scope, Exit.void))
      await runtime.dispose()
    }
  }
  return formatTable("JWT sign and verify: our Jwks (runPromise per op) vs raw jose and raw node:crypto", rows, options)
}

register({ name: "oauth", run })
