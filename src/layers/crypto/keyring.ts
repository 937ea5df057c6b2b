/**
 * The keys behind the `Crypto` layers: one active key that seals, older keys
 * that still open what they sealed, and the lookup-hash key.
 *
 * Keys are 32 random bytes written as unpadded base64url, as seed 000
 * generates them: `openssl rand -base64 32 | tr '+/' '-_' | tr -d '='`.
 * A key's id is the first 8 base64url characters of SHA-256 over its raw
 * bytes, so both implementations, and every instance, agree on it.
 *
 * The lookup-hash key is `RS_TOKENS_HASH_KEY` when set, otherwise derived as
 * HMAC-SHA256(active key, "mcp-oauth-store/lookup-hash/v1"). A derived hash
 * key changes with the active key, and with it every stored lookup hash: set
 * `RS_TOKENS_HASH_KEY` before rotating the active key.
 *
 * No `node:` import: this module is part of the Workers bundle. Key material
 * stays `Redacted` until a layer imports it.
 */
import { Config, ConfigError, Effect, Either, Option, Redacted } from "effect"
import { decodeBase64Url, decodedByteLength, encodeBase64Url, isBase64UrlAlphabet } from "../../internal/base64url.ts"
import { KID_LENGTH } from "./envelope.ts"

/** Length in bytes of every key (AES-256 and the HMAC-SHA256 lookup-hash key). */
export const KEY_BYTES = 32

/** The HMAC message that derives the lookup-hash key from the active key when none is configured. */
export const LOOKUP_HASH_INFO = "mcp-oauth-store/lookup-hash/v1"

/** Raw keyring options: keys as unpadded base64url strings of 32 bytes. */
export interface KeyringOptions {
  /** The key that seals new data (`RS_TOKENS_ENC_KEY`). */
  readonly activeKey: Redacted.Redacted<string>
  /** Older keys, used only to open data they sealed (`RS_TOKENS_ENC_KEYRING`). */
  readonly previousKeys?: ReadonlyArray<Redacted.Redacted<string>> | undefined
  /** The lookup-hash key (`RS_TOKENS_HASH_KEY`); derived from `activeKey` when absent. */
  readonly hashKey?: Redacted.Redacted<string> | undefined
}

/** One encryption key and its id. */
export interface KeyringKey {
  readonly kid: string
  readonly key: Redacted.Redacted<Uint8Array<ArrayBuffer>>
}

/** A validated keyring: decoded keys with their ids, ready for a `Crypto` layer. */
export interface Keyring {
  /** Seals new envelopes. */
  readonly active: KeyringKey
  /** Open envelopes only; never the active key, no duplicates. */
  readonly previous: ReadonlyArray<KeyringKey>
  /** The HMAC-SHA256 key of lookup hashes. */
  readonly hashKey: Redacted.Redacted<Uint8Array<ArrayBuffer>>
}

const requirement = `must be ${KEY_BYTES} bytes in unpadded base64url`

/**
 * Decode one key. `Left` is a message naming `label` and what is wrong; it
 * never contains the value.
 */
export const decodeKey = (label: string, value: string): Either.Either<Uint8Array<ArrayBuffer>, string> => {
  if (!isBase64UrlAlphabet(value)) {
    if (value.includes("=")) return Either.left(`${label} ${requirement} (remove the "=" padding)`)
    if (/[+/]/.test(value)) {
      return Either.left(`${label} ${requirement} (found "+" or "/" of standard base64: translate them to "-" and "_")`)
    }
    return Either.left(`${label} ${requirement} (found a character outside A-Z a-z 0-9 - _)`)
  }
  const bytes = decodedByteLength(value.length)
  if (bytes !== KEY_BYTES || value.length % 4 === 1) {
    return Either.left(`${label} ${requirement} (got ${bytes} bytes)`)
  }
  const decoded = decodeBase64Url(value)
  if (decoded === undefined) {
    return Either.left(`${label} ${requirement} (its last character is not canonical base64url)`)
  }
  return Either.right(decoded)
}

const invalid = (path: ReadonlyArray<string>, message: string): ConfigError.ConfigError =>
  ConfigError.InvalidData([...path], message)

const keyConfig = (name: string): Config.Config<Redacted.Redacted<string>> =>
  Config.redacted(name).pipe(
    Config.mapOrFail((key) =>
      Either.match(decodeKey(name, Redacted.value(key)), {
        onLeft: (message) => Either.left(invalid([], message)),
        onRight: () => Either.right(key)
      })
    )
  )

const splitKeyring = (name: string, list: string): Either.Either<Array<Redacted.Redacted<string>>, string> => {
  const entries = list.split(",").map((entry) => entry.trim()).filter((entry) => entry.length > 0)
  const keys: Array<Redacted.Redacted<string>> = []
  for (const [index, entry] of entries.entries()) {
    const decoded = decodeKey(`${name} entry ${index + 1}`, entry)
    if (Either.isLeft(decoded)) return Either.left(decoded.left)
    keys.push(Redacted.make(entry))
  }
  return Either.right(keys)
}

const keyringListConfig = (name: string): Config.Config<ReadonlyArray<Redacted.Redacted<string>>> =>
  Config.redacted(name).pipe(
    Config.mapOrFail((list) =>
      Either.mapLeft(splitKeyring(name, Redacted.value(list)), (message) => invalid([], message))
    ),
    Config.withDefault<ReadonlyArray<Redacted.Redacted<string>>>([])
  )

/**
 * The keyring options read from the environment:
 * - `RS_TOKENS_ENC_KEY` (required): the active key;
 * - `RS_TOKENS_ENC_KEYRING` (optional): comma-separated older keys, decrypt only;
 * - `RS_TOKENS_HASH_KEY` (optional): the lookup-hash key.
 *
 * An invalid key fails as `ConfigError.InvalidData` whose message names the
 * variable and what is wrong, never the value.
 */
export const keyringConfig: Config.Config<KeyringOptions> = Config.all({
  activeKey: keyConfig("RS_TOKENS_ENC_KEY"),
  previousKeys: keyringListConfig("RS_TOKENS_ENC_KEYRING"),
  hashKey: Config.option(keyConfig("RS_TOKENS_HASH_KEY"))
}).pipe(
  Config.map(({ activeKey, hashKey, previousKeys }): KeyringOptions => ({
    activeKey,
    previousKeys,
    ...(Option.isSome(hashKey) ? { hashKey: hashKey.value } : {})
  }))
)

const subtle = (): SubtleCrypto => globalThis.crypto.subtle

/** The id of a key: the first 8 base64url characters of SHA-256 over its raw bytes. */
export const keyId = (key: Uint8Array<ArrayBuffer>): Effect.Effect<string> =>
  Effect.promise(() => subtle().digest("SHA-256", key)).pipe(
    Effect.map((digest) => encodeBase64Url(new Uint8Array(digest)).slice(0, KID_LENGTH))
  )

const deriveHashKey = (activeKey: Uint8Array<ArrayBuffer>): Effect.Effect<Uint8Array<ArrayBuffer>> =>
  Effect.promise(async () => {
    const key = await subtle().importKey("raw", activeKey, { name: "HMAC", hash: "SHA-256" }, false, ["sign"])
    return new Uint8Array(await subtle().sign("HMAC", key, new TextEncoder().encode(LOOKUP_HASH_INFO)))
  })

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && a.every((byte, index) => byte === b[index])

const decodeOption = (
  label: string,
  value: Redacted.Redacted<string>
): Effect.Effect<Uint8Array<ArrayBuffer>, ConfigError.ConfigError> =>
  Either.match(decodeKey(label, Redacted.value(value)), {
    onLeft: (message) => Effect.fail(invalid([label], message)),
    onRight: Effect.succeed
  })

/**
 * Build a keyring from raw options. Fails with `ConfigError.InvalidData`
 * naming the option (`activeKey`, `previousKeys[i]`, `hashKey`) when a key is
 * not 32 bytes of unpadded base64url. Older keys equal to the active key, or to
 * each other, are dropped.
 */
export const makeKeyring = (options: KeyringOptions): Effect.Effect<Keyring, ConfigError.ConfigError> =>
  Effect.gen(function*() {
    const activeBytes = yield* decodeOption("activeKey", options.activeKey)
    const previousBytes = yield* Effect.forEach(
      options.previousKeys ?? [],
      (key, index) => decodeOption(`previousKeys[${index}]`, key)
    )
    const hashBytes = options.hashKey === undefined
      ? yield* deriveHashKey(activeBytes)
      : yield* decodeOption("hashKey", options.hashKey)
    if (options.hashKey === undefined && previousBytes.length > 0) {
      yield* Effect.logWarning(
        "older encryption keys are configured but no lookup-hash key: hashes derive from the active key, " +
          "so codes, tokens, API keys and client secrets stored before the rotation no longer match; " +
          "set RS_TOKENS_HASH_KEY (hashKey) to the key they were hashed with"
      ).pipe(Effect.annotateLogs("module", "Crypto"))
    }

    const active: KeyringKey = { kid: yield* keyId(activeBytes), key: Redacted.make(activeBytes) }
    const seen: Array<{ readonly kid: string; readonly bytes: Uint8Array }> = [{ kid: active.kid, bytes: activeBytes }]
    const previous: Array<KeyringKey> = []
    for (const [index, bytes] of previousBytes.entries()) {
      if (seen.some((known) => sameBytes(known.bytes, bytes))) continue
      const kid = yield* keyId(bytes)
      if (seen.some((known) => known.kid === kid)) {
        return yield* Effect.fail(invalid([`previousKeys[${index}]`], `previousKeys[${index}] has the same key id as another key`))
      }
      seen.push({ kid, bytes })
      previous.push({ kid, key: Redacted.make(bytes) })
    }
    return { active, previous, hashKey: Redacted.make(hashBytes) }
  })

/** All keys of a keyring that can open envelopes, the active one first. */
export const openingKeys = (keyring: Keyring): ReadonlyArray<KeyringKey> => [keyring.active, ...keyring.previous]

/** A fresh random key in the accepted format (32 bytes, unpadded base64url), for ephemeral and dev layers. */
export const generateKey: Effect.Effect<Redacted.Redacted<string>> = Effect.sync(() =>
  Redacted.make(encodeBase64Url(globalThis.crypto.getRandomValues(new Uint8Array(KEY_BYTES))))
)
