/**
 * The `Jwks` layer: signing keys shared through the `SigningKeyStore`,
 * rotated by a scheduled fiber, imported once per instance.
 */
import { Clock, type Config, type ConfigError, Duration, Effect, Layer, Option, Redacted } from "effect"
import { type CryptoKey, decodeProtectedHeader, errors as JoseErrors, type JWTPayload, jwtVerify, SignJWT } from "jose"
import { LruMap } from "../internal/lruMap.ts"
import type { Jwk, SigningAlgorithm, SigningKey, SigningKeySet, SigningKeyStatus } from "../schema/signingKey.ts"
import { Jwks, type JwtClaims, JwtRejected, type JwtVerifyOptions, type PublicJwks, type SigningKeyInfo, type VerifiedJwt } from "../services/Jwks.ts"
import { SigningKeyStore } from "../services/SigningKeyStore.ts"
import { StoreError } from "../services/StoreError.ts"
import { algorithmOf, type GeneratedKey, generateSigningKey, importKey, isPrivateJwk, publicJwk, thumbprint } from "./jwk.ts"
import { claimProblem } from "./jwtClaims.ts"
import { activeKey, freshKeysNeeded, initialSet, isRotationDue, rotatedSet } from "./keyLifecycle.ts"

/** The signing algorithm, the rotation period and how many keys are kept. */
export interface JwksOptions {
  /** The algorithm of generated keys (seed 002: RS256). */
  readonly algorithm?: SigningAlgorithm
  /** Days between rotations (seed 002's `keyRotationDays`: 30). */
  readonly keyRotationDays?: number
  /** Keys kept: next + active + retiring (seed 002's `maxKeys`: 3; at least 3). */
  readonly maxKeys?: number
  /** How often an instance re-reads the shared set, to learn of other instances' rotations (default 10 minutes). */
  readonly refreshInterval?: Duration.DurationInput
  /** A token naming an unknown `kid` re-reads the set at most this often (default 30 seconds). */
  readonly unknownKidReloadInterval?: Duration.DurationInput
  /**
   * Seed 002's `signKey`: a private JWK to sign with. With it, nothing is
   * generated, stored or rotated: the keys are exactly the configured ones.
   */
  readonly signKey?: Jwk
  /** Seed 002's `jwks`: further public keys that verify tokens and are published. */
  readonly jwks?: { readonly keys: ReadonlyArray<Jwk> }
  /**
   * Tokens whose signature verified, remembered (least recently used out) so
   * a token presented again is not verified again: only its key's presence
   * and its time, issuer and audience claims are re-checked. Default 10,000;
   * 0 turns the cache off.
   */
  readonly verifyCacheSize?: number
}

interface ResolvedJwksOptions {
  readonly algorithm: SigningAlgorithm
  readonly periodMillis: number
  readonly maxKeys: number
  readonly refreshMillis: number
  readonly unknownKidReloadMillis: number
  readonly verifyCacheSize: number
}

const METHOD = "Jwks.layer"
const invalidOption = (description: string) => new StoreError({ reason: "Invalid", method: METHOD, description })

const resolve = (options: JwksOptions): Effect.Effect<ResolvedJwksOptions, StoreError> => {
  const days = options.keyRotationDays ?? 30
  const maxKeys = options.maxKeys ?? 3
  const verifyCacheSize = options.verifyCacheSize ?? 10_000
  if (!Number.isInteger(verifyCacheSize) || verifyCacheSize < 0) {
    return Effect.fail(invalidOption("verifyCacheSize must be a non-negative integer"))
  }
  if (!(days > 0) || !Number.isFinite(days)) return Effect.fail(invalidOption("keyRotationDays must be a positive number"))
  if (!Number.isInteger(maxKeys) || maxKeys < 3) {
    return Effect.fail(invalidOption("maxKeys must be an integer of at least 3 (next, active, retiring)"))
  }
  return Effect.succeed({
    algorithm: options.algorithm ?? "RS256",
    periodMillis: days * 86_400_000,
    maxKeys,
    refreshMillis: Duration.toMillis(Duration.decode(options.refreshInterval ?? "10 minutes")),
    unknownKidReloadMillis: Duration.toMillis(Duration.decode(options.unknownKidReloadInterval ?? "30 seconds")),
    verifyCacheSize
  })
}

/** A key imported for this instance. */
interface LoadedKey {
  readonly kid: string
  readonly alg: SigningAlgorithm
  readonly status: SigningKeyStatus | "configured"
  readonly publicJwk: Jwk
  readonly publicKey: CryptoKey
  readonly privateKey?: CryptoKey
}

type SigningLoadedKey = LoadedKey & { readonly privateKey: CryptoKey }

/** What an instance holds: the imported keys of one version of the set, and the one it signs with. */
interface KeyCache {
  readonly version: number
  readonly keys: ReadonlyMap<string, LoadedKey>
  readonly signing: SigningLoadedKey
  readonly published: PublicJwks
  /** When the signing key started signing (generated keys), for the rotation schedule. */
  readonly activatedAt: number
}

const STATUS_ORDER: Record<LoadedKey["status"], number> = { active: 0, next: 1, retiring: 2, configured: 3 }

const publish = (keys: Iterable<LoadedKey>): PublicJwks => ({
  keys: [...keys].sort((a, b) => STATUS_ORDER[a.status] - STATUS_ORDER[b.status]).map((k) => k.publicJwk)
})

/** Import a configured public key (one of seed 002's `jwks`); its `kid` defaults to its thumbprint. */
const importConfigured = (jwk: Jwk, label: string): Effect.Effect<LoadedKey, StoreError> =>
  Effect.gen(function*() {
    const alg = algorithmOf(jwk)
    if (alg === undefined) return yield* Effect.fail(invalidOption(`${label}: not an RS256, ES256 or EdDSA key`))
    const kid = typeof jwk["kid"] === "string" ? jwk["kid"] : yield* thumbprint(publicJwk(jwk, "", alg), METHOD)
    const published = publicJwk(jwk, kid, alg)
    const publicKey = yield* importKey(published, alg, METHOD)
    return { kid, alg, status: "configured" as const, publicJwk: published, publicKey }
  })

/** Import seed 002's `signKey`: a private JWK, and its public half. */
const importSigner = (jwk: Jwk): Effect.Effect<SigningLoadedKey, StoreError> =>
  Effect.gen(function*() {
    if (!isPrivateJwk(jwk)) return yield* Effect.fail(invalidOption("signKey: not a private key"))
    const loaded = yield* importConfigured(jwk, "signKey")
    const privateKey = yield* importKey(jwk, loaded.alg, METHOD)
    return { ...loaded, privateKey }
  })

/** Describe a `jose` verification failure without echoing anything from the token. */
const describeFailure = (error: unknown): string => {
  if (error instanceof JoseErrors.JWTExpired) return "token has expired"
  if (error instanceof JoseErrors.JWTClaimValidationFailed) {
    if (error.claim === "exp" && error.reason === "missing") return "token has no expiry"
    if (error.claim === "aud") return "token is not for this audience"
    if (error.claim === "iss") return "token issuer mismatch"
    if (error.claim === "nbf") return "token is not yet valid"
    return "token claims are invalid"
  }
  if (error instanceof JoseErrors.JWSSignatureVerificationFailed) return "token signature is invalid"
  if (error instanceof JoseErrors.JOSEAlgNotAllowed) return "token algorithm is not allowed"
  return "token is malformed"
}

const MAX_ROTATION_ATTEMPTS = 10

/**
 * Build the service over a `SigningKeyStore`. Generated keys are loaded (or
 * created, on first start) before the layer is ready; a fiber in the layer's
 * scope re-reads the set every `refreshInterval` and rotates when the active
 * key's period is over. Two instances rotating at once compare-and-set on the
 * stored version: the loser re-reads, finds the rotation done, and adopts it.
 */
export const make = (options: JwksOptions = {}) =>
  Effect.gen(function*() {
    const resolved = yield* resolve(options)
    const store = yield* SigningKeyStore
    const extra = yield* Effect.forEach(options.jwks?.keys ?? [], (jwk, i) => importConfigured(jwk, `jwks.keys[${i}]`))
    const configuredSigner = options.signKey === undefined ? undefined : yield* importSigner(options.signKey)

    let cache: KeyCache | undefined
    /** Tokens whose signature verified, by their exact text. */
    const verified = new LruMap<string, VerifiedJwt>()
    let lastKidMissReload = Number.NEGATIVE_INFINITY
    const lock = yield* Effect.makeSemaphore(1)

    /** Adopt a stored set: import what is new, reuse what this instance already imported. */
    const install = (set: SigningKeySet, generated: ReadonlyArray<GeneratedKey> = []) =>
      Effect.gen(function*() {
        // The same version with the same signing key is what we hold (a wiped and re-created set restarts at 1).
        if (cache !== undefined && cache.version === set.version && cache.signing.kid === activeKey(set)?.kid) return
        const previous = cache?.keys
        const fresh = new Map(generated.map((g) => [g.key.kid, g]))
        const keys = new Map<string, LoadedKey>()
        let signing: SigningLoadedKey | undefined
        let activatedAt = 0
        for (const stored of set.keys) {
          const known = previous?.get(stored.kid) ?? fresh.get(stored.kid)
          const publicKey = known?.publicKey ?? (yield* importKey(stored.publicJwk, stored.alg, "Jwks.reload"))
          let privateKey = known?.privateKey
          if (stored.status === "active" && privateKey === undefined) {
            privateKey = yield* importKey(Redacted.value(stored.privateJwk), stored.alg, "Jwks.reload")
          }
          const loaded: LoadedKey = {
            kid: stored.kid,
            alg: stored.alg,
            status: stored.status,
            publicJwk: publicJwk(stored.publicJwk, stored.kid, stored.alg),
            publicKey,
            ...(privateKey === undefined ? {} : { privateKey })
          }
          keys.set(stored.kid, loaded)
          if (stored.status === "active" && privateKey !== undefined) {
            signing = { ...loaded, privateKey }
            activatedAt = stored.activatedAt ?? stored.createdAt
          }
        }
        for (const k of extra) if (!keys.has(k.kid)) keys.set(k.kid, k)
        if (signing === undefined) {
          return yield* Effect.fail(new StoreError({ reason: "Corrupt", method: "Jwks.reload", description: "stored key set has no active key" }))
        }
        cache = { version: set.version, keys, signing, published: publish(keys.values()), activatedAt }
      })

    /**
     * Bring the stored set up to date and adopt it: create it when there is
     * none, rotate it when due (or when `force`), retrying on a lost
     * compare-and-set. Keys generated for a lost attempt are used in the next.
     */
    const synchronize = (force: boolean) =>
      lock.withPermits(1)(Effect.gen(function*() {
        const fresh: Array<GeneratedKey> = []
        for (let attempt = 0; attempt < MAX_ROTATION_ATTEMPTS; attempt++) {
          const current = yield* store.get
          const now = yield* Clock.currentTimeMillis
          if (Option.isSome(current) && !force && !isRotationDue(current.value, now, resolved.periodMillis)) {
            return yield* install(current.value)
          }
          const base = Option.getOrUndefined(current)
          while (fresh.length < freshKeysNeeded(base)) fresh.push(yield* generateSigningKey(resolved.algorithm, now))
          const freshKeys: ReadonlyArray<SigningKey> = fresh.map((g) => g.key)
          const next = base === undefined
            ? initialSet(freshKeys, now)
            : rotatedSet(base, freshKeys, now, resolved.maxKeys)
          if (yield* store.compareAndSet(base?.version, next)) {
            yield* Effect.logInfo("signing keys rotated").pipe(
              Effect.annotateLogs({ version: next.version, alg: resolved.algorithm })
            )
            return yield* install(next, fresh)
          }
        }
        return yield* Effect.fail(
          new StoreError({ reason: "Conflict", method: "Jwks.rotate", description: "the key set kept changing under us" })
        )
      }))

    const reloadStored = lock.withPermits(1)(Effect.gen(function*() {
      const current = yield* store.get
      if (Option.isSome(current)) yield* install(current.value)
    }))

    if (configuredSigner === undefined) {
      yield* synchronize(false)
      const loop = Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const dueAt = cache === undefined ? now : cache.activatedAt + resolved.periodMillis
        const wait = Math.min(resolved.refreshMillis, Math.max(1_000, dueAt - now))
        yield* Effect.sleep(Duration.millis(wait))
        yield* synchronize(false).pipe(
          Effect.catchAllCause((cause) => Effect.logWarning("signing key refresh failed; retrying later", cause))
        )
      })
      yield* loop.pipe(Effect.forever, Effect.annotateLogs("module", "Jwks"), Effect.interruptible, Effect.forkScoped)
    } else {
      const signing = configuredSigner
      const keys = new Map<string, LoadedKey>([[signing.kid, signing]])
      for (const k of extra) if (!keys.has(k.kid)) keys.set(k.kid, k)
      cache = { version: 0, keys, signing, published: publish(keys.values()), activatedAt: 0 }
    }

    const current = (): KeyCache => cache as KeyCache

    /** The key a token names, re-reading the shared set (rate-limited) when this instance does not know it. */
    const lookup = (kid: string) =>
      Effect.gen(function*() {
        const found = current().keys.get(kid)
        if (found !== undefined || configuredSigner !== undefined) return found
        const now = yield* Clock.currentTimeMillis
        if (now - lastKidMissReload < resolved.unknownKidReloadMillis) {
          // Re-read recently: wait for a reload or rotation in flight (it may bring this kid), then look again.
          yield* lock.withPermits(1)(Effect.void)
          return current().keys.get(kid)
        }
        lastKidMissReload = now
        yield* reloadStored
        return current().keys.get(kid)
      })

    /** A token not seen before: its header, its key, then the signature and claims (jose); remembered when it verifies. */
    const verifySignature = (
      token: string,
      now: number,
      verifyOptions: JwtVerifyOptions,
      toleranceSeconds: number
    ): Effect.Effect<VerifiedJwt, JwtRejected | StoreError> =>
      Effect.gen(function*() {
        const { audience, clockTolerance, issuer } = verifyOptions
        let header: { kid?: unknown; alg?: unknown; typ?: unknown }
        try {
          header = decodeProtectedHeader(token)
        } catch {
          return yield* Effect.fail(new JwtRejected({ description: "token is malformed" }))
        }
        if (typeof header.kid !== "string") return yield* Effect.fail(new JwtRejected({ description: "token names no signing key" }))
        const key = yield* lookup(header.kid)
        if (key === undefined) return yield* Effect.fail(new JwtRejected({ description: "token names an unknown signing key" }))
        if (header.alg !== key.alg) return yield* Effect.fail(new JwtRejected({ description: "token algorithm is not allowed" }))
        const result = yield* Effect.tryPromise({
          try: () =>
            jwtVerify(token, key.publicKey, {
              algorithms: [key.alg],
              currentDate: new Date(now),
              requiredClaims: ["exp"],
              ...(issuer === undefined ? {} : { issuer }),
              ...(audience === undefined ? {} : { audience: typeof audience === "string" ? audience : [...audience] }),
              ...(clockTolerance === undefined ? {} : { clockTolerance: toleranceSeconds })
            }),
          catch: (error) => new JwtRejected({ description: describeFailure(error) })
        })
        const outcome: VerifiedJwt = {
          kid: key.kid,
          alg: key.alg,
          ...(typeof header.typ === "string" ? { typ: header.typ } : {}),
          claims: result.payload
        }
        if (resolved.verifyCacheSize > 0) {
          verified.set(token, outcome)
          if (verified.size > resolved.verifyCacheSize) verified.evictOldest()
        }
        return outcome
      })

    const service: Jwks.Service = {
      sign: (claims: JwtClaims, signOptions = {}) =>
        Effect.suspend(() => {
          const key = current().signing
          const typ = signOptions.typ ?? "JWT"
          // Methods, not arrow properties: under tsx an arrow in a property costs a name definition per call.
          return Effect.tryPromise({
            try() {
              return new SignJWT({ ...claims } as JWTPayload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ }).sign(key.privateKey)
            },
            catch(cause) {
              return new StoreError({ reason: "Invalid", method: "Jwks.sign", description: "claims do not sign", cause })
            }
          }).pipe(Effect.map((token) => ({ token, kid: key.kid, alg: key.alg })))
        }),

      // One step for a token seen before (the hot path of every request): no generator.
      verify: (token, verifyOptions = {}) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const { audience, clockTolerance, issuer } = verifyOptions
          const toleranceSeconds = clockTolerance === undefined ? 0 : Duration.toSeconds(Duration.decode(clockTolerance))
          const seen = verified.get(token)
          // A token seen before: its key must still be in the set; its claims are checked again, its signature is not.
          // The cache is first in, first out (no promotion on a hit: moving a hot entry on every request is what costs).
          if (seen !== undefined && current().keys.get(seen.kid)?.alg === seen.alg) {
            const problem = claimProblem(seen.claims, { issuer, audience, toleranceSeconds, nowSeconds: Math.floor(now / 1000) })
            return problem === undefined ? Effect.succeed(seen) : Effect.fail(new JwtRejected({ description: problem }))
          }
          return verifySignature(token, now, verifyOptions, toleranceSeconds)
        }),

      publicJwks: Effect.sync(() => current().published),

      keys: Effect.sync(() =>
        [...current().keys.values()]
          .sort((a, b) => STATUS_ORDER[a.status] - STATUS_ORDER[b.status])
          .map((k): SigningKeyInfo => ({ kid: k.kid, alg: k.alg, status: k.status, signing: k.kid === current().signing.kid }))
      ),

      reload: configuredSigner === undefined ? reloadStored : Effect.void,

      rotate: configuredSigner === undefined
        ? synchronize(true)
        : Effect.fail(new StoreError({ reason: "Invalid", method: "Jwks.rotate", description: "configured keys are not rotated" }))
    }
    return service
  })

/**
 * The `Jwks` service as a layer over a `SigningKeyStore`, with its rotation
 * fiber in the layer's scope. Fails with `StoreError` (`Invalid`) on bad
 * options or keys, or when the store cannot be read.
 */
export const layer = (options: JwksOptions = {}): Layer.Layer<Jwks, StoreError, SigningKeyStore> =>
  Layer.scoped(Jwks, make(options))

/** `layer` with its options read from `Config`. */
export const layerConfig = (
  config: Config.Config<JwksOptions>
): Layer.Layer<Jwks, StoreError | ConfigError.ConfigError, SigningKeyStore> =>
  Layer.unwrapEffect(Effect.map(config, layer))
