import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Option, Redacted, Scope, TestClock } from "effect"
import { decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT } from "jose"
import * as JwksLive from "../../src/oauth/jwks.ts"
import { Jwks } from "../../src/services/Jwks.ts"
import { RawStorage } from "../../src/services/RawStorage.ts"
import { SigningKeyStore } from "../../src/services/SigningKeyStore.ts"
import { eventually, stores } from "./fixtures.ts"

const DAY = 86_400

/** One store, and as many `Jwks` instances over it as a test builds (each its own cache and fiber). */
const sharedStore = Effect.gen(function*() {
  const base = yield* Layer.build(stores())
  /** An instance with exactly these options. */
  const instanceOf = (options: JwksLive.JwksOptions) =>
    Layer.build(JwksLive.layer(options)).pipe(Effect.provide(base), Effect.map((context) => Context.get(context, Jwks)))
  /** An instance with ES256 keys (fast to generate) and a daily refresh, unless asked otherwise. */
  const instance = (options: JwksLive.JwksOptions = {}) => instanceOf({ algorithm: "ES256", refreshInterval: "1 day", ...options })
  return { base, instance, instanceOf, store: Context.get(base, SigningKeyStore) }
})

const signingKid = (jwks: Jwks.Service) => Effect.map(jwks.keys, (keys) => keys.find((k) => k.signing)?.kid)
const statusOf = (jwks: Jwks.Service, kid: string | undefined) => Effect.map(jwks.keys, (keys) => keys.find((k) => k.kid === kid)?.status)
const headerOf = (token: string) => decodeProtectedHeader(token)
const storedVersion = (store: SigningKeyStore.Service) => Effect.map(store.get, (set) => Option.getOrThrow(set).version)

describe("Jwks: generated keys shared through the SigningKeyStore", () => {
  it.scoped("RS256 by default, with a kid header; the key set is created once and stored", () =>
    Effect.gen(function*() {
      const { instanceOf, store } = yield* sharedStore
      const jwks = yield* instanceOf({})
      const signed = yield* jwks.sign({ sub: "alice", exp: 3600 })
      expect(headerOf(signed.token)).toEqual({ alg: "RS256", kid: signed.kid, typ: "JWT" })
      const set = Option.getOrThrow(yield* store.get)
      expect(set.version).toBe(1)
      expect(set.keys.map((k) => k.status)).toEqual(["active", "next"])
      expect(set.keys[0]?.kid).toBe(signed.kid)
      expect((yield* jwks.verify(signed.token)).claims["sub"]).toBe("alice")
    }))

  for (const alg of ["ES256", "EdDSA"] as const) {
    it.scoped(`${alg} is selectable`, () =>
      Effect.gen(function*() {
        const { instance } = yield* sharedStore
        const jwks = yield* instance({ algorithm: alg })
        const signed = yield* jwks.sign({ sub: "alice", exp: 3600 })
        expect(headerOf(signed.token).alg).toBe(alg)
        expect((yield* jwks.verify(signed.token)).alg).toBe(alg)
      }))
  }

  it.scoped("a second instance and a restart sign and verify with the same keys", () =>
    Effect.gen(function*() {
      const { base, instance } = yield* sharedStore
      const firstScope = yield* Scope.make()
      const first = yield* Layer.buildWithScope(JwksLive.layer({ algorithm: "ES256" }), firstScope).pipe(
        Effect.provide(base),
        Effect.map((c) => Context.get(c, Jwks))
      )
      const token = (yield* first.sign({ sub: "alice", exp: 3600 })).token
      const second = yield* instance()
      expect(yield* signingKid(second)).toBe(yield* signingKid(first))
      yield* Scope.close(firstScope, Exit.void)
      const restarted = yield* instance()
      expect((yield* restarted.verify(token)).claims["sub"]).toBe("alice")
      expect(yield* restarted.publicJwks).toEqual(yield* second.publicJwks)
    }))

  it.scoped("private keys never reach the published JWKS or the store in the clear", () =>
    Effect.gen(function*() {
      const { base, instance } = yield* sharedStore
      const jwks = yield* instance()
      const published = yield* jwks.publicJwks
      expect(published.keys).toHaveLength(2)
      for (const key of published.keys) {
        expect(Object.keys(key).sort()).toEqual(["alg", "crv", "kid", "kty", "use", "x", "y"])
      }
      const set = Option.getOrThrow(yield* Context.get(base, SigningKeyStore).get)
      const privateParts = set.keys.map((k) => String(Redacted.value(k.privateJwk)["d"]))
      expect(privateParts.every((d) => d.length > 20)).toBe(true)
      const raw = (yield* Context.get(base, RawStorage).dump).join("\n")
      expect(raw.length).toBeGreaterThan(0)
      for (const d of privateParts) expect(raw).not.toContain(d)
    }))
})

describe("Jwks: rotation", () => {
  it.scoped("the scheduled fiber rotates after keyRotationDays: next -> active -> retiring, all published", () =>
    Effect.gen(function*() {
      const { instance } = yield* sharedStore
      const jwks = yield* instance({ keyRotationDays: 30 })
      const [k1, k2] = (yield* jwks.keys).map((k) => k.kid)
      const oldToken = (yield* jwks.sign({ sub: "alice", exp: 30 * DAY + 3600 })).token

      yield* TestClock.adjust("29 days")
      expect(yield* signingKid(jwks)).toBe(k1)
      yield* TestClock.adjust("1 day")
      yield* eventually(Effect.map(signingKid(jwks), (kid) => kid === k2))

      const keys = yield* jwks.keys
      expect(keys.map((k) => k.status)).toEqual(["active", "next", "retiring"])
      expect(keys.map((k) => k.kid).slice(0, 1)).toEqual([k2])
      expect(yield* statusOf(jwks, k1)).toBe("retiring")
      expect((yield* jwks.publicJwks).keys.map((k) => k["kid"])).toHaveLength(3)
      // Signed before the rotation by the key now retiring: verifies until it expires.
      expect((yield* jwks.verify(oldToken)).kid).toBe(k1)
      expect((yield* jwks.sign({ exp: 31 * DAY })).kid).toBe(k2)
      yield* TestClock.adjust("1 hour")
      expect((yield* Effect.flip(jwks.verify(oldToken))).description).toBe("token has expired")
    }))

  it.scoped("a token signed with the next key by an instance that rotated verifies on one that has not reloaded", () =>
    Effect.gen(function*() {
      const { instance } = yield* sharedStore
      const a = yield* instance()
      const b = yield* instance()
      const [, k2] = (yield* a.keys).map((k) => k.kid)
      yield* a.rotate
      const token = yield* a.sign({ sub: "alice", exp: 3600 })
      expect(token.kid).toBe(k2)
      expect(yield* statusOf(b, k2)).toBe("next") // b still holds the old version
      expect((yield* b.verify(token.token)).kid).toBe(k2)
    }))

  it.scoped("a kid this instance has never seen re-reads the shared set once", () =>
    Effect.gen(function*() {
      const { instance } = yield* sharedStore
      const a = yield* instance()
      const b = yield* instance()
      yield* a.rotate
      yield* a.rotate
      const token = yield* a.sign({ sub: "alice", exp: 3600 })
      expect(yield* statusOf(b, token.kid)).toBeUndefined()
      expect((yield* b.verify(token.token)).kid).toBe(token.kid)
      expect(yield* signingKid(b)).toBe(token.kid)
    }))

  it.scoped("keys beyond maxKeys leave the set, oldest retiring first", () =>
    Effect.gen(function*() {
      const { instance, store } = yield* sharedStore
      const jwks = yield* instance({ maxKeys: 3 })
      const first = yield* jwks.sign({ sub: "alice", exp: 365 * DAY })
      yield* jwks.rotate
      expect((yield* jwks.verify(first.token)).kid).toBe(first.kid)
      yield* jwks.rotate
      expect((yield* jwks.keys).map((k) => k.status)).toEqual(["active", "next", "retiring"])
      expect(Option.getOrThrow(yield* store.get).keys).toHaveLength(3)
      expect((yield* Effect.flip(jwks.verify(first.token))).description).toBe("token names an unknown signing key")
    }))

  it.scoped("maxKeys 4 keeps two retiring keys", () =>
    Effect.gen(function*() {
      const { instance } = yield* sharedStore
      const jwks = yield* instance({ maxKeys: 4 })
      const first = yield* jwks.sign({ sub: "alice", exp: 365 * DAY })
      yield* jwks.rotate
      yield* jwks.rotate
      expect((yield* jwks.keys).map((k) => k.status)).toEqual(["active", "next", "retiring", "retiring"])
      expect((yield* jwks.verify(first.token)).kid).toBe(first.kid)
    }))

  it.scoped("two instances due at the same moment rotate once: the loser adopts the winner's set", () =>
    Effect.gen(function*() {
      const { instance, store } = yield* sharedStore
      const a = yield* instance({ keyRotationDays: 30 })
      const b = yield* instance({ keyRotationDays: 30 })
      const [k1, k2] = (yield* a.keys).map((k) => k.kid)
      yield* TestClock.adjust("30 days")
      yield* eventually(Effect.map(Effect.all([signingKid(a), signingKid(b)]), ([x, y]) => x === k2 && y === k2))
      expect(yield* storedVersion(store)).toBe(2)
      const set = Option.getOrThrow(yield* store.get)
      expect(set.keys.map((k) => k.status)).toEqual(["next", "active", "retiring"])
      expect(set.keys.map((k) => k.kid).slice(1)).toEqual([k2, k1])
      expect(yield* a.publicJwks).toEqual(yield* b.publicJwks)
    }))

  it.scoped("concurrent forced rotations on two instances never lose an update (compare-and-set, retried)", () =>
    Effect.gen(function*() {
      const { instance, store } = yield* sharedStore
      const a = yield* instance({ maxKeys: 10 })
      const b = yield* instance({ maxKeys: 10 })
      yield* Effect.all([a.rotate, b.rotate, a.rotate, b.rotate], { concurrency: "unbounded" })
      const set = Option.getOrThrow(yield* store.get)
      expect(set.version).toBe(5)
      expect(set.keys.map((k) => k.status)).toEqual(["next", "active", "retiring", "retiring", "retiring", "retiring"])
      expect(new Set(set.keys.map((k) => k.kid)).size).toBe(6)
      yield* b.reload
      yield* a.reload
      expect(yield* signingKid(a)).toBe(set.keys[1]?.kid)
      expect(yield* signingKid(b)).toBe(set.keys[1]?.kid)
    }))

  it.effect("maxKeys below 3 is refused", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.scoped(Layer.build(JwksLive.layer({ maxKeys: 2 }).pipe(Layer.provide(stores())))))
      expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain("maxKeys")
    }))
})

// Every case twice: with the cache of verified tokens (a token checked before skips only its signature) and without.
for (const verifyCacheSize of [10_000, 0]) describe(`Jwks: verification (verifyCacheSize ${verifyCacheSize})`, () => {
  const setup = Effect.gen(function*() {
    const { instance } = yield* sharedStore
    return yield* instance({ verifyCacheSize })
  })

  it.scoped("a token without exp is refused", () =>
    Effect.gen(function*() {
      const jwks = yield* setup
      const token = yield* jwks.sign({ sub: "alice" })
      expect((yield* Effect.flip(jwks.verify(token.token)))._tag).toBe("JwtRejected")
      expect((yield* Effect.flip(jwks.verify(token.token))).description).toBe("token has no expiry")
    }))

  it.scoped("expiry is read from the Clock, with the clock tolerance asked for", () =>
    Effect.gen(function*() {
      const jwks = yield* setup
      const token = (yield* jwks.sign({ sub: "alice", exp: 60 })).token
      yield* TestClock.adjust("59 seconds")
      yield* jwks.verify(token)
      yield* TestClock.adjust("11 seconds")
      expect((yield* Effect.flip(jwks.verify(token))).description).toBe("token has expired")
      yield* jwks.verify(token, { clockTolerance: "30 seconds" })
      yield* TestClock.adjust("30 seconds")
      expect((yield* Effect.flip(jwks.verify(token, { clockTolerance: "30 seconds" }))).description).toBe("token has expired")
    }))

  it.scoped("issuer and audience are checked when asked for", () =>
    Effect.gen(function*() {
      const jwks = yield* setup
      const token = (yield* jwks.sign({ iss: "https://auth.example", aud: "https://mcp.example/mcp", exp: 60 })).token
      yield* jwks.verify(token, { issuer: "https://auth.example", audience: "https://mcp.example/mcp" })
      yield* jwks.verify(token, { audience: ["https://x.example", "https://mcp.example/mcp"] })
      expect((yield* Effect.flip(jwks.verify(token, { audience: "https://other.example" }))).description)
        .toBe("token is not for this audience")
      expect((yield* Effect.flip(jwks.verify(token, { issuer: "https://evil.example" }))).description)
        .toBe("token issuer mismatch")
    }))

  it.scoped("the kid must name a known key exactly", () =>
    Effect.gen(function*() {
      const jwks = yield* setup
      const { kid } = yield* jwks.sign({ exp: 60 })
      const foreign = yield* Effect.promise(() => generateKeyPair("ES256"))
      const sign = (header: { alg: string; kid?: string }) =>
        Effect.promise(() => new SignJWT({ sub: "mallory", exp: 60 }).setProtectedHeader(header).sign(foreign.privateKey))
      const unknown = yield* sign({ alg: "ES256", kid: `${kid}x` })
      expect((yield* Effect.flip(jwks.verify(unknown))).description).toBe("token names an unknown signing key")
      const prefix = yield* sign({ alg: "ES256", kid: kid.slice(0, -1) })
      expect((yield* Effect.flip(jwks.verify(prefix))).description).toBe("token names an unknown signing key")
      const none = yield* sign({ alg: "ES256" })
      expect((yield* Effect.flip(jwks.verify(none))).description).toBe("token names no signing key")
      // A known kid, but the foreign key's signature.
      const impostor = yield* sign({ alg: "ES256", kid })
      expect((yield* Effect.flip(jwks.verify(impostor))).description).toBe("token signature is invalid")
    }))

  it.scoped("the algorithm is pinned to the key's", () =>
    Effect.gen(function*() {
      const jwks = yield* setup
      const signed = yield* jwks.sign({ sub: "alice", exp: 60 })
      const [, payload, signature] = signed.token.split(".")
      const reheader = (header: object) => `${Buffer.from(JSON.stringify(header)).toString("base64url")}.${payload}.${signature}`
      for (const alg of ["RS256", "ES384", "HS256", "none", "EdDSA"]) {
        const error = yield* Effect.flip(jwks.verify(reheader({ alg, kid: signed.kid, typ: "JWT" })))
        expect(error.description).toBe("token algorithm is not allowed")
      }
      const hmac = yield* Effect.promise(() =>
        new SignJWT({ sub: "mallory", exp: 60 }).setProtectedHeader({ alg: "HS256", kid: signed.kid }).sign(new Uint8Array(32))
      )
      expect((yield* Effect.flip(jwks.verify(hmac))).description).toBe("token algorithm is not allowed")
    }))

  it.scoped("a tampered or malformed token is refused", () =>
    Effect.gen(function*() {
      const jwks = yield* setup
      const signed = yield* jwks.sign({ sub: "alice", exp: 60 })
      const [header, , signature] = signed.token.split(".")
      const forged = `${header}.${Buffer.from(JSON.stringify({ sub: "mallory", exp: 60 })).toString("base64url")}.${signature}`
      expect((yield* Effect.flip(jwks.verify(forged))).description).toBe("token signature is invalid")
      for (const bad of ["", "abc", "a.b.c", `${header}.!!!.${signature}`, `${header}.${signature}`]) {
        expect((yield* Effect.flip(jwks.verify(bad)))._tag).toBe("JwtRejected")
      }
    }))
})

describe("Jwks: configured keys (seed 002's signKey and jwks)", () => {
  it.scoped("signs with signKey, verifies jwks keys too, publishes only public members, stores nothing", () =>
    Effect.gen(function*() {
      const mine = yield* Effect.promise(() => generateKeyPair("ES256", { extractable: true }))
      const theirs = yield* Effect.promise(() => generateKeyPair("EdDSA", { extractable: true }))
      const signKey = { ...(yield* Effect.promise(() => exportJWK(mine.privateKey))), kid: "user-key-1" }
      const extra = { ...(yield* Effect.promise(() => exportJWK(theirs.publicKey))), kid: "user-key-0" }
      const { instance, store } = yield* sharedStore
      const jwks = yield* instance({ signKey, jwks: { keys: [extra] } })

      const signed = yield* jwks.sign({ sub: "alice", exp: 60 })
      expect(headerOf(signed.token)).toEqual({ alg: "ES256", kid: "user-key-1", typ: "JWT" })
      expect((yield* jwks.verify(signed.token)).claims["sub"]).toBe("alice")
      const external = yield* Effect.promise(() =>
        new SignJWT({ sub: "bob", exp: 60 }).setProtectedHeader({ alg: "EdDSA", kid: "user-key-0" }).sign(theirs.privateKey)
      )
      expect((yield* jwks.verify(external)).claims["sub"]).toBe("bob")

      const published = yield* jwks.publicJwks
      expect(published.keys.map((k) => k["kid"])).toEqual(["user-key-1", "user-key-0"])
      expect(published.keys.some((k) => "d" in k)).toBe(false)
      expect(Option.isNone(yield* store.get)).toBe(true)
      expect((yield* Effect.flip(jwks.rotate)).reason).toBe("Invalid")
    }))

  it.scoped("a signKey without private members is refused", () =>
    Effect.gen(function*() {
      const pair = yield* Effect.promise(() => generateKeyPair("ES256", { extractable: true }))
      const publicOnly = yield* Effect.promise(() => exportJWK(pair.publicKey))
      const { instance } = yield* sharedStore
      const exit = yield* Effect.exit(instance({ signKey: { ...publicOnly } }))
      expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain("signKey: not a private key")
    }))
})
