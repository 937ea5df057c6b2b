import { describe, expect, it } from "@effect/vitest"
import { ConfigError, ConfigProvider, Effect, Redacted } from "effect"
import { build } from "esbuild"
import { createCipheriv, createHash, createHmac, randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import { isBuiltin } from "node:module"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { decodeBase64Url, encodeBase64Url } from "../src/internal/base64url.ts"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import { WebCrypto } from "../src/exports/crypto/web.ts"
import { parseEnvelope } from "../src/layers/crypto/envelope.ts"
import { type KeyringOptions, LOOKUP_HASH_INFO, makeKeyring } from "../src/layers/crypto/keyring.ts"
import { Crypto } from "../src/services/Crypto.ts"
import { StoreError } from "../src/services/StoreError.ts"

// ---------------------------------------------------------------------------
// Fixtures, computed independently of the code under test (node:crypto, Buffer)

const keyBytes = (fill: number): Buffer => Buffer.alloc(32, fill)
const KEY_A = keyBytes(0xa1).toString("base64url")
const KEY_B = keyBytes(0xb2).toString("base64url")
const KEY_C = keyBytes(0xc3).toString("base64url")
const HASH_KEY = keyBytes(0x44).toString("base64url")
const HASH_KEY_2 = keyBytes(0x55).toString("base64url")

const r = (value: string): Redacted.Redacted<string> => Redacted.make(value)
const kidOf = (key: string): string =>
  createHash("sha256").update(Buffer.from(key, "base64url")).digest("base64url").slice(0, 8)
const hmac = (key: Buffer, message: string): Buffer => createHmac("sha256", key).update(message, "utf8").digest()
const derivedHashKey = (activeKey: string): Buffer => hmac(Buffer.from(activeKey, "base64url"), LOOKUP_HASH_INFO)

/** Seal an envelope by hand from the documented format, to check both layers against the spec. */
const sealByHand = (key: string, kid: string, plaintext: string, recordKey: string): string => {
  const iv = randomBytes(12)
  const cipher = createCipheriv("aes-256-gcm", Buffer.from(key, "base64url"), iv)
  cipher.setAAD(Buffer.from(`v1.${kid}.${recordKey}`, "utf8"))
  const sealed = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final(), cipher.getAuthTag()])
  return `v1.${kid}.${iv.toString("base64url")}.${sealed.toString("base64url")}`
}

const splitEnvelope = (envelope: string): [string, string, string, string] => {
  const parts = envelope.split(".")
  expect(parts).toHaveLength(4)
  return [parts[0] ?? "", parts[1] ?? "", parts[2] ?? "", parts[3] ?? ""]
}

/** Flip one bit of the decoded part `index` (2 = iv, 3 = sealed) at byte `at` (negative: from the end). */
const flipBit = (envelope: string, index: 2 | 3, at: number): string => {
  const parts = splitEnvelope(envelope)
  const bytes = Buffer.from(parts[index], "base64url")
  const position = at < 0 ? bytes.length + at : at
  bytes[position] = (bytes[position] ?? 0) ^ 0x01
  parts[index] = bytes.toString("base64url")
  return parts.join(".")
}

// ---------------------------------------------------------------------------
// Harness

type Implementation = typeof NodeCrypto | typeof WebCrypto

const implementations: ReadonlyArray<readonly [string, Implementation]> = [
  ["node", NodeCrypto],
  ["web", WebCrypto]
]

const serviceOf = (impl: Implementation, options: KeyringOptions) => Effect.provide(Crypto, impl.layer(options))

const withEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

const serviceFromEnv = (impl: Implementation, env: Record<string, string>) =>
  Effect.provide(Crypto, impl.layerConfig()).pipe(withEnv(env))

const expectDecryptFailed = <A, R>(effect: Effect.Effect<A, StoreError, R>) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(effect)
    expect(error).toBeInstanceOf(StoreError)
    expect(error.reason).toBe("DecryptFailed")
    expect(error.method).toBe("Crypto.decrypt")
    return error
  })

/** Asserts a config failure names `variable` and never echoes `badValue`. */
const expectConfigError = (error: ConfigError.ConfigError, variable: string, badValue: string, detail?: string) => {
  expect(ConfigError.isConfigError(error)).toBe(true)
  const text = `${String(error)} ${error.message}`
  expect(text).toContain(variable)
  if (detail !== undefined) expect(text).toContain(detail)
  expect(text).not.toContain(badValue)
  expect(text).not.toContain(badValue.slice(0, 12))
}

const PLAINTEXTS = ["", "a", "provider-token-0123456789", "héllo wörld ✓ 🌍", "x".repeat(100_000)]

// ---------------------------------------------------------------------------
// Behaviour, run over both implementations

for (const [name, impl] of implementations) {
  describe(`${name} Crypto`, () => {
    it.effect("round-trips plaintexts under their record key", () =>
      Effect.gen(function*() {
        const crypto = yield* serviceOf(impl, { activeKey: r(KEY_A) })
        for (const plaintext of PLAINTEXTS) {
          const envelope = yield* crypto.encrypt(plaintext, "tokens:abc")
          if (plaintext.length >= 8) {
            expect(envelope).not.toContain(plaintext.slice(0, 8))
            expect(Buffer.from(splitEnvelope(envelope)[3], "base64url").includes(plaintext.slice(0, 8))).toBe(false)
          }
          expect(yield* crypto.decrypt(envelope, "tokens:abc")).toBe(plaintext)
        }
      }))

    it.effect("writes v1.<kid>.<iv>.<ciphertext+tag> with a fresh 12-byte IV", () =>
      Effect.gen(function*() {
        const crypto = yield* serviceOf(impl, { activeKey: r(KEY_A) })
        const plaintext = "héllo"
        const first = yield* crypto.encrypt(plaintext, "rk")
        const second = yield* crypto.encrypt(plaintext, "rk")
        const [version, kid, iv, sealed] = splitEnvelope(first)
        expect(version).toBe("v1")
        expect(kid).toBe(kidOf(KEY_A))
        expect(Buffer.from(iv, "base64url")).toHaveLength(12)
        expect(Buffer.from(sealed, "base64url")).toHaveLength(Buffer.byteLength(plaintext) + 16)
        expect(first).toMatch(/^v1\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/)
        expect(second).not.toBe(first)
        expect(splitEnvelope(second)[2]).not.toBe(iv)
      }))

    it.effect("opens an envelope sealed by hand from the documented format", () =>
      Effect.gen(function*() {
        const crypto = yield* serviceOf(impl, { activeKey: r(KEY_A) })
        const envelope = sealByHand(KEY_A, kidOf(KEY_A), "by hand ✓", "sessions:1")
        expect(yield* crypto.decrypt(envelope, "sessions:1")).toBe("by hand ✓")
      }))

    it.effect("binds the ciphertext to its record key (AAD)", () =>
      Effect.gen(function*() {
        const crypto = yield* serviceOf(impl, { activeKey: r(KEY_A) })
        const envelope = yield* crypto.encrypt("secret-provider-token", "tokens:alice")
        const error = yield* expectDecryptFailed(crypto.decrypt(envelope, "tokens:mallory"))
        expect(error.message).not.toContain("secret-provider-token")
        expect(error.message).not.toContain(envelope)
        yield* expectDecryptFailed(crypto.decrypt(envelope, ""))
        yield* expectDecryptFailed(crypto.decrypt(envelope, "tokens:alice "))
      }))

    it.effect("rejects a flipped bit in the ciphertext, the tag or the IV", () =>
      Effect.gen(function*() {
        const crypto = yield* serviceOf(impl, { activeKey: r(KEY_A) })
        const envelope = yield* crypto.encrypt("some plaintext", "rk")
        expect(yield* crypto.decrypt(envelope, "rk")).toBe("some plaintext")
        yield* expectDecryptFailed(crypto.decrypt(flipBit(envelope, 3, 0), "rk"))
        yield* expectDecryptFailed(crypto.decrypt(flipBit(envelope, 3, -1), "rk"))
        yield* expectDecryptFailed(crypto.decrypt(flipBit(envelope, 3, -16), "rk"))
        yield* expectDecryptFailed(crypto.decrypt(flipBit(envelope, 2, 0), "rk"))
        yield* expectDecryptFailed(crypto.decrypt(flipBit(envelope, 2, -1), "rk"))
      }))

    it.effect("rejects an envelope whose kid names the key but which another key sealed", () =>
      Effect.gen(function*() {
        const crypto = yield* serviceOf(impl, { activeKey: r(KEY_A) })
        const forged = sealByHand(KEY_B, kidOf(KEY_A), "forged", "rk")
        yield* expectDecryptFailed(crypto.decrypt(forged, "rk"))
      }))

    it.effect("rejects an envelope whose kid was swapped to another key of the keyring", () =>
      Effect.gen(function*() {
        const crypto = yield* serviceOf(impl, { activeKey: r(KEY_B), previousKeys: [r(KEY_A)] })
        const envelope = yield* crypto.encrypt("data", "rk")
        const parts = splitEnvelope(envelope)
        parts[1] = kidOf(KEY_A)
        yield* expectDecryptFailed(crypto.decrypt(parts.join("."), "rk"))
      }))

    it.effect("rejects an unknown kid", () =>
      Effect.gen(function*() {
        const crypto = yield* serviceOf(impl, { activeKey: r(KEY_A) })
        const envelope = sealByHand(KEY_C, kidOf(KEY_C), "data", "rk")
        const error = yield* expectDecryptFailed(crypto.decrypt(envelope, "rk"))
        expect(error.description).toContain("key id")
        const parts = splitEnvelope(yield* crypto.encrypt("data", "rk"))
        parts[1] = "AAAAAAAA"
        yield* expectDecryptFailed(crypto.decrypt(parts.join("."), "rk"))
      }))

    it.effect("rejects malformed envelopes without a defect", () =>
      Effect.gen(function*() {
        const crypto = yield* serviceOf(impl, { activeKey: r(KEY_A) })
        // 1-byte plaintext: 17 sealed bytes, 23 characters, 4 unused bits in the last one
        const envelope = yield* crypto.encrypt("x", "rk")
        const [version, kid, iv, sealed] = splitEnvelope(envelope)
        const lastIndex = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".indexOf(sealed.slice(-1))
        const nonCanonical = sealed.slice(0, -1) +
          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[lastIndex | 1]
        expect(Buffer.from(nonCanonical, "base64url")).toEqual(Buffer.from(sealed, "base64url"))
        const malformed = [
          "",
          "v1",
          `v1.${kid}.${iv}`,
          `${envelope}.extra`,
          `v2.${kid}.${iv}.${sealed}`,
          `V1.${kid}.${iv}.${sealed}`,
          `v1.${kid}.${iv}!.${sealed}`,
          `v1.${kid}.${iv}.${sealed}=`,
          `v1.${kid}.${iv}.${sealed.replace(/-|_/g, "+")}+/`,
          `v1.${kid}.${iv} .${sealed}`,
          `v1.${kid}.${iv.slice(0, -2)}.${sealed}`,
          `v1.${kid}.${iv}.${sealed.slice(0, 20)}`,
          `v1.${kid}.${iv}.`,
          `v1..${iv}.${sealed}`,
          `v1.${kid}x.${iv}.${sealed}`,
          `v1.${kid}.${iv}.${nonCanonical}`
        ]
        for (const input of malformed) {
          const error = yield* expectDecryptFailed(crypto.decrypt(input, "rk"))
          if (input.length > 0) expect(error.message).not.toContain(input)
        }
        expect(yield* crypto.decrypt(`${version}.${kid}.${iv}.${sealed}`, "rk")).toBe("x")
      }))

    it.effect("rotates keys: older keys open, the active key seals, a dropped key no longer opens", () =>
      Effect.gen(function*() {
        const onlyA = yield* serviceOf(impl, { activeKey: r(KEY_A) })
        const rotated = yield* serviceOf(impl, { activeKey: r(KEY_B), previousKeys: [r(KEY_A)] })
        const onlyB = yield* serviceOf(impl, { activeKey: r(KEY_B) })
        const sealedByA = yield* onlyA.encrypt("old data", "rk")
        expect(splitEnvelope(sealedByA)[1]).toBe(kidOf(KEY_A))
        expect(yield* rotated.decrypt(sealedByA, "rk")).toBe("old data")
        const sealedByB = yield* rotated.encrypt("new data", "rk")
        expect(splitEnvelope(sealedByB)[1]).toBe(kidOf(KEY_B))
        expect(yield* onlyB.decrypt(sealedByB, "rk")).toBe("new data")
        yield* expectDecryptFailed(onlyB.decrypt(sealedByA, "rk"))
        yield* expectDecryptFailed(onlyA.decrypt(sealedByB, "rk"))
      }))

    it.effect("hash is HMAC-SHA256 under the derived lookup-hash key, deterministic and per secret", () =>
      Effect.gen(function*() {
        const crypto = yield* serviceOf(impl, { activeKey: r(KEY_A) })
        const first = yield* crypto.hash("refresh-token-1")
        expect(yield* crypto.hash("refresh-token-1")).toBe(first)
        expect(yield* crypto.hash("refresh-token-2")).not.toBe(first)
        expect(first).toBe(hmac(derivedHashKey(KEY_A), "refresh-token-1").toString("base64url"))
        expect(first).toMatch(/^[A-Za-z0-9_-]{43}$/)
        expect(yield* crypto.hash("ünïcode ✓")).toBe(hmac(derivedHashKey(KEY_A), "ünïcode ✓").toString("base64url"))
        expect(yield* crypto.hash("")).toBe(hmac(derivedHashKey(KEY_A), "").toString("base64url"))
      }))

    it.effect("hash differs under a different hash key", () =>
      Effect.gen(function*() {
        const derivedA = yield* serviceOf(impl, { activeKey: r(KEY_A) })
        const derivedB = yield* serviceOf(impl, { activeKey: r(KEY_B) })
        const explicit = yield* serviceOf(impl, { activeKey: r(KEY_A), hashKey: r(HASH_KEY) })
        const explicit2 = yield* serviceOf(impl, { activeKey: r(KEY_A), hashKey: r(HASH_KEY_2) })
        const hashes = [
          yield* derivedA.hash("s"),
          yield* derivedB.hash("s"),
          yield* explicit.hash("s"),
          yield* explicit2.hash("s")
        ]
        expect(new Set(hashes).size).toBe(4)
        expect(hashes[2]).toBe(hmac(Buffer.from(HASH_KEY, "base64url"), "s").toString("base64url"))
      }))

    it.effect("an explicit hash key overrides the derived one and survives rotating the active key", () =>
      Effect.gen(function*() {
        const before = yield* serviceOf(impl, { activeKey: r(KEY_A), hashKey: r(HASH_KEY) })
        const after = yield* serviceOf(impl, { activeKey: r(KEY_B), previousKeys: [r(KEY_A)], hashKey: r(HASH_KEY) })
        const derived = yield* serviceOf(impl, { activeKey: r(KEY_A) })
        expect(yield* after.hash("api-key")).toBe(yield* before.hash("api-key"))
        expect(yield* before.hash("api-key")).not.toBe(yield* derived.hash("api-key"))
      }))

    it.effect("randomToken: length, alphabet, uniqueness", () =>
      Effect.gen(function*() {
        const crypto = yield* serviceOf(impl, { activeKey: r(KEY_A) })
        const token = yield* crypto.randomToken()
        expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/)
        expect(Buffer.from(token, "base64url")).toHaveLength(32)
        for (const bytes of [0, 1, 2, 3, 16, 48, 70_000]) {
          const sized = yield* crypto.randomToken(bytes)
          expect(sized).toHaveLength(Math.ceil((bytes * 4) / 3))
          expect(Buffer.from(sized, "base64url")).toHaveLength(bytes)
        }
        // past WebCrypto's 65,536-byte limit per getRandomValues call, still random to the end
        const large = Buffer.from(yield* crypto.randomToken(70_000), "base64url")
        expect(new Set(large.subarray(66_000)).size).toBeGreaterThan(200)
        const tokens = yield* Effect.forEach(Array.from({ length: 2_000 }), () => crypto.randomToken(16))
        expect(new Set(tokens).size).toBe(tokens.length)
        // not stuck on a constant byte: 2,000 x 16 random bytes hit every byte value
        const seen = new Set(tokens.flatMap((t) => [...Buffer.from(t, "base64url")]))
        expect(seen.size).toBe(256)
        const invalid = yield* Effect.exit(crypto.randomToken(-1))
        expect(invalid._tag).toBe("Failure")
        expect((yield* Effect.exit(crypto.randomToken(1.5)))._tag).toBe("Failure")
      }))

    it.effect("timingSafeEqual compares strings", () =>
      Effect.gen(function*() {
        const crypto = yield* serviceOf(impl, { activeKey: r(KEY_A) })
        const cases: ReadonlyArray<readonly [string, string, boolean]> = [
          ["", "", true],
          ["abc", "abc", true],
          ["héllo ✓", "héllo ✓", true],
          ["abc", "abd", false],
          ["abc", "xbc", false],
          ["abc", "ab", false],
          ["ab", "abc", false],
          ["", "a", false],
          ["a", "", false],
          ["é", "e\u0301", false],
          ["\u0000", "", false],
          [KEY_A, KEY_B, false]
        ]
        for (const [a, b, expected] of cases) {
          expect(crypto.timingSafeEqual(a, b), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(expected)
        }
      }))

    it.effect("layerEphemeral: a working fresh key per build", () =>
      Effect.gen(function*() {
        const first = yield* Effect.provide(Crypto, impl.layerEphemeral)
        const second = yield* Effect.provide(Crypto, impl.layerEphemeral)
        const envelope = yield* first.encrypt("dev data", "rk")
        expect(yield* first.decrypt(envelope, "rk")).toBe("dev data")
        yield* expectDecryptFailed(second.decrypt(envelope, "rk"))
        expect(yield* first.hash("s")).not.toBe(yield* second.hash("s"))
      }))

    it.effect("layerConfig reads RS_TOKENS_ENC_KEY, RS_TOKENS_ENC_KEYRING and RS_TOKENS_HASH_KEY", () =>
      Effect.gen(function*() {
        const oldData = yield* (yield* serviceOf(impl, { activeKey: r(KEY_A) })).encrypt("old", "rk")
        const olderData = yield* (yield* serviceOf(impl, { activeKey: r(KEY_C) })).encrypt("older", "rk")
        const minimal = yield* serviceFromEnv(impl, { RS_TOKENS_ENC_KEY: KEY_A })
        expect(yield* minimal.decrypt(oldData, "rk")).toBe("old")
        expect(yield* minimal.hash("s")).toBe(hmac(derivedHashKey(KEY_A), "s").toString("base64url"))

        const full = yield* serviceFromEnv(impl, {
          RS_TOKENS_ENC_KEY: KEY_B,
          RS_TOKENS_ENC_KEYRING: `${KEY_A}, ${KEY_C}`,
          RS_TOKENS_HASH_KEY: HASH_KEY
        })
        expect(yield* full.decrypt(oldData, "rk")).toBe("old")
        expect(yield* full.decrypt(olderData, "rk")).toBe("older")
        expect(splitEnvelope(yield* full.encrypt("new", "rk"))[1]).toBe(kidOf(KEY_B))
        expect(yield* full.hash("s")).toBe(hmac(Buffer.from(HASH_KEY, "base64url"), "s").toString("base64url"))

        const emptyKeyring = yield* serviceFromEnv(impl, { RS_TOKENS_ENC_KEY: KEY_B, RS_TOKENS_ENC_KEYRING: "" })
        yield* expectDecryptFailed(emptyKeyring.decrypt(oldData, "rk"))
      }))

    it.effect("layerConfig fails with a ConfigError naming the variable, never the value", () =>
      Effect.gen(function*() {
        const short = KEY_A.slice(0, 42)
        const padded = `${KEY_A}=`
        const standard = keyBytes(0xfb).toString("base64").replace(/=+$/, "")
        expect(standard).toMatch(/[+/]/)
        const odd = `${KEY_A.slice(0, 42)}*`
        const long = keyBytes(0xa1).toString("base64url") + "AAAA"
        const nonCanonical = KEY_A.slice(0, 42) + "B" // low unused bits set
        const cases: ReadonlyArray<readonly [Record<string, string>, string, string, string]> = [
          [{ RS_TOKENS_ENC_KEY: short }, "RS_TOKENS_ENC_KEY", short, "got 31 bytes"],
          [{ RS_TOKENS_ENC_KEY: long }, "RS_TOKENS_ENC_KEY", long, "got 35 bytes"],
          [{ RS_TOKENS_ENC_KEY: padded }, "RS_TOKENS_ENC_KEY", padded, "padding"],
          [{ RS_TOKENS_ENC_KEY: standard }, "RS_TOKENS_ENC_KEY", standard, "base64url"],
          [{ RS_TOKENS_ENC_KEY: odd }, "RS_TOKENS_ENC_KEY", odd, "base64url"],
          [{ RS_TOKENS_ENC_KEY: nonCanonical }, "RS_TOKENS_ENC_KEY", nonCanonical, "canonical"],
          [{ RS_TOKENS_ENC_KEY: KEY_A, RS_TOKENS_ENC_KEYRING: `${KEY_B},${short}` }, "RS_TOKENS_ENC_KEYRING entry 2", short, "got 31 bytes"],
          [{ RS_TOKENS_ENC_KEY: KEY_A, RS_TOKENS_ENC_KEYRING: padded }, "RS_TOKENS_ENC_KEYRING entry 1", padded, "padding"],
          [{ RS_TOKENS_ENC_KEY: KEY_A, RS_TOKENS_HASH_KEY: standard }, "RS_TOKENS_HASH_KEY", standard, "base64url"],
          [{ RS_TOKENS_ENC_KEY: KEY_A, RS_TOKENS_HASH_KEY: short }, "RS_TOKENS_HASH_KEY", short, "got 31 bytes"]
        ]
        for (const [env, variable, badValue, detail] of cases) {
          const error = yield* Effect.flip(serviceFromEnv(impl, env))
          expect(ConfigError.isConfigError(error) && ConfigError.isInvalidData(error), variable).toBe(true)
          expectConfigError(error, variable, badValue, detail)
        }
        const missing = yield* Effect.flip(serviceFromEnv(impl, {}))
        expect(ConfigError.isConfigError(missing) && ConfigError.isMissingData(missing)).toBe(true)
        expect(String(missing)).toContain("RS_TOKENS_ENC_KEY")
      }))

    it.effect("layer(options) fails with a ConfigError naming the option, never the value", () =>
      Effect.gen(function*() {
        const short = KEY_A.slice(0, 40)
        const active = yield* Effect.flip(serviceOf(impl, { activeKey: r(short) }))
        expectConfigError(active, "activeKey", short, "got 30 bytes")
        const previous = yield* Effect.flip(serviceOf(impl, { activeKey: r(KEY_A), previousKeys: [r(KEY_B), r(short)] }))
        expectConfigError(previous, "previousKeys[1]", short)
        const hash = yield* Effect.flip(serviceOf(impl, { activeKey: r(KEY_A), hashKey: r(`${HASH_KEY}=`) }))
        expectConfigError(hash, "hashKey", HASH_KEY, "padding")
      }))
  })
}

// ---------------------------------------------------------------------------
// Across implementations

describe("node and web Crypto together", () => {
  it.effect("each opens what the other sealed, with the same kids and hashes", () =>
    Effect.gen(function*() {
      const options: KeyringOptions = { activeKey: r(KEY_B), previousKeys: [r(KEY_A)] }
      const node = yield* serviceOf(NodeCrypto, options)
      const web = yield* serviceOf(WebCrypto, options)
      for (const plaintext of PLAINTEXTS) {
        const fromNode = yield* node.encrypt(plaintext, "tokens:x")
        const fromWeb = yield* web.encrypt(plaintext, "tokens:x")
        expect(yield* web.decrypt(fromNode, "tokens:x")).toBe(plaintext)
        expect(yield* node.decrypt(fromWeb, "tokens:x")).toBe(plaintext)
        expect(splitEnvelope(fromNode)[1]).toBe(splitEnvelope(fromWeb)[1])
        yield* expectDecryptFailed(web.decrypt(fromNode, "tokens:y"))
        yield* expectDecryptFailed(node.decrypt(fromWeb, "tokens:y"))
      }
      const oldFromNode = yield* (yield* serviceOf(NodeCrypto, { activeKey: r(KEY_A) })).encrypt("old", "rk")
      const oldFromWeb = yield* (yield* serviceOf(WebCrypto, { activeKey: r(KEY_A) })).encrypt("old", "rk")
      expect(yield* web.decrypt(oldFromNode, "rk")).toBe("old")
      expect(yield* node.decrypt(oldFromWeb, "rk")).toBe("old")
    }))

  it.effect("produce identical hashes for the same keys", () =>
    Effect.gen(function*() {
      for (const options of [{ activeKey: r(KEY_A) }, { activeKey: r(KEY_B), hashKey: r(HASH_KEY) }]) {
        const node = yield* serviceOf(NodeCrypto, options)
        const web = yield* serviceOf(WebCrypto, options)
        for (const secret of ["", "a", "client-secret-✓", "x".repeat(10_000)]) {
          expect(yield* node.hash(secret)).toBe(yield* web.hash(secret))
        }
      }
    }))

  it.effect("makeKeyring computes kids as SHA-256 prefixes and drops duplicate keys", () =>
    Effect.gen(function*() {
      const keyring = yield* makeKeyring({ activeKey: r(KEY_A), previousKeys: [r(KEY_A), r(KEY_B), r(KEY_B)] })
      expect(keyring.active.kid).toBe(kidOf(KEY_A))
      expect(keyring.previous.map((key) => key.kid)).toEqual([kidOf(KEY_B)])
      expect(Buffer.from(Redacted.value(keyring.hashKey))).toEqual(derivedHashKey(KEY_A))
      expect(String(keyring.active.key)).not.toContain("161")
      expect(String(keyring.hashKey)).toBe("<redacted>")
    }))

  it("parseEnvelope and base64url agree with Buffer", () => {
    for (const length of [0, 1, 2, 3, 4, 5, 31, 32, 33, 300]) {
      const bytes = randomBytes(length)
      const encoded = encodeBase64Url(bytes)
      expect(encoded).toBe(bytes.toString("base64url"))
      expect(Buffer.from(decodeBase64Url(encoded) ?? [0xff, 0xff])).toEqual(bytes)
    }
    for (const bad of ["A", "AB=", "AB+C", "A B", "AB/C", "AÀ", "AB\n", "AF", "AAB"]) {
      expect(decodeBase64Url(bad), bad).toBeUndefined()
    }
    const envelope = sealByHand(KEY_A, kidOf(KEY_A), "p", "rk")
    const parsed = parseEnvelope(envelope)
    expect(parsed._tag).toBe("Right")
    if (parsed._tag === "Right") {
      expect(parsed.right.kid).toBe(kidOf(KEY_A))
      expect(parsed.right.iv).toHaveLength(12)
      expect(parsed.right.sealed).toHaveLength(17)
    }
  })
})

// ---------------------------------------------------------------------------
// The WebCrypto layer must bundle for Cloudflare Workers

const here = dirname(fileURLToPath(import.meta.url))
const srcDir = resolve(here, "../src")
const webEntry = resolve(srcDir, "layers/crypto/web.ts")
const nodeEntry = resolve(srcDir, "layers/crypto/node.ts")

const stripComments = (source: string): string => source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "")

const importSpecifiers = (source: string): Array<string> => {
  const code = stripComments(source)
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[^;"']*?\bfrom\s*["']([^"']+)["']/g,
    /\bimport\s*["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
    /\brequire\s*\(\s*["']([^"']+)["']\s*\)/g
  ]
  return patterns.flatMap((pattern) => [...code.matchAll(pattern)].map((match) => match[1] ?? ""))
}

/** Follow relative imports from `entry`; returns the files visited and the non-relative specifiers met. */
const importGraph = (entry: string) => {
  const files = new Set<string>()
  const external = new Set<string>()
  const pending = [entry]
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (files.has(file)) continue
    files.add(file)
    for (const specifier of importSpecifiers(readFileSync(file, "utf8"))) {
      if (specifier.startsWith(".")) pending.push(resolve(dirname(file), specifier))
      else external.add(specifier)
    }
  }
  return { files, external }
}

const nodeOnly = (specifier: string): boolean =>
  specifier.startsWith("node:") || isBuiltin(specifier) || specifier === "crypto" || specifier === "buffer"

describe("WebCrypto layer portability", () => {
  it("imports nothing from node: anywhere in its relative import graph", () => {
    const { external, files } = importGraph(webEntry)
    const relative = [...files].map((file) => file.slice(srcDir.length + 1)).sort()
    expect(relative).toEqual([
      "internal/base64url.ts",
      "layers/crypto/envelope.ts",
      "layers/crypto/keyring.ts",
      "layers/crypto/layers.ts",
      "layers/crypto/web.ts",
      "services/Crypto.ts",
      "services/StoreError.ts"
    ])
    expect([...external].filter(nodeOnly)).toEqual([])
    expect([...external].sort()).toEqual(["effect"])
    for (const file of files) {
      expect(stripComments(readFileSync(file, "utf8")), file).not.toMatch(/\b(?:Buffer|process|require)\b/)
    }
    // the walker does see node: imports where they are
    expect([...importGraph(nodeEntry).external].filter(nodeOnly)).toEqual(["node:crypto"])
  })

  it("bundles for a platform without Node built-ins", async () => {
    const bundle = (entry: string) =>
      build({
        entryPoints: [entry],
        bundle: true,
        write: false,
        platform: "neutral",
        format: "esm",
        mainFields: ["module", "main"],
        metafile: true,
        logLevel: "silent"
      })
    const result = await bundle(webEntry)
    const inputs = Object.keys(result.metafile.inputs)
    expect(inputs.some((input) => input.endsWith("layers/crypto/web.ts"))).toBe(true)
    expect(inputs.filter((input) => input.startsWith("node:"))).toEqual([])
    await expect(bundle(nodeEntry)).rejects.toThrow(/node:crypto/)
  }, 60_000)
})
