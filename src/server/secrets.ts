/**
 * The encryption key of a server started without `RS_TOKENS_ENC_KEY`: read
 * from `<DATA_DIR>/encryption.key`, or generated there once (mode 0600) and
 * said so in the log, so that a restart opens what the last run sealed.
 */
import { Config, ConfigError, ConfigProvider, Data, Effect, Either, Layer, Option, Redacted } from "effect"
import { promises as fs } from "node:fs"
import { join } from "node:path"
import { decodeKey, generateKey, keyringConfig } from "../layers/crypto/keyring.ts"
import * as NodeCrypto from "../layers/crypto/node.ts"
import type { StoreKind } from "./config.ts"

/** The key file could not be read, written or used. */
export class KeyFileError extends Data.TaggedError("KeyFileError")<{ readonly path: string; readonly description: string }> {
  override get message(): string {
    return `${this.path}: ${this.description}`
  }
}

export const KEY_FILE_NAME = "encryption.key"

const fileError = (path: string, description: string) => (error: unknown) =>
  new KeyFileError({ path, description: `${description} (${error instanceof Error && "code" in error ? String(error.code) : "error"})` })

/** Read the key file, or create it with a fresh key when there is none; `generated` tells which. */
export const loadOrCreateKey = (
  dataDir: string
): Effect.Effect<{ readonly key: Redacted.Redacted<string>; readonly path: string; readonly generated: boolean }, KeyFileError> =>
  Effect.gen(function*() {
    const path = join(dataDir, KEY_FILE_NAME)
    yield* Effect.tryPromise({ try: () => fs.mkdir(dataDir, { recursive: true, mode: 0o700 }), catch: fileError(dataDir, "cannot create the data directory") })
    const fresh = yield* generateKey
    const created = yield* Effect.tryPromise({
      try: () => fs.writeFile(path, `${Redacted.value(fresh)}\n`, { flag: "wx", mode: 0o600 }).then(() => true),
      catch: (error) => error
    }).pipe(
      Effect.catchIf(
        (error) => error instanceof Error && "code" in error && error.code === "EEXIST",
        () => Effect.succeed(false)
      ),
      Effect.mapError(fileError(path, "cannot write the key file"))
    )
    if (created) return { key: fresh, path, generated: true }
    const stat = yield* Effect.tryPromise({ try: () => fs.stat(path), catch: fileError(path, "cannot read the key file") })
    if ((stat.mode & 0o077) !== 0) {
      yield* Effect.logWarning("the key file is readable by other users; chmod 600 it").pipe(Effect.annotateLogs("path", path))
    }
    const text = yield* Effect.tryPromise({ try: () => fs.readFile(path, "utf8"), catch: fileError(path, "cannot read the key file") })
    const value = text.trim()
    const decoded = decodeKey("the key file", value)
    if (Either.isLeft(decoded)) return yield* Effect.fail(new KeyFileError({ path, description: decoded.left }))
    return { key: Redacted.make(value), path, generated: false }
  })

/**
 * `Crypto` for the server: `RS_TOKENS_ENC_KEY` (with `RS_TOKENS_ENC_KEYRING`
 * and `RS_TOKENS_HASH_KEY`) when set; otherwise the key file in `dataDir`
 * stands in for `RS_TOKENS_ENC_KEY`, the other two still read from the
 * environment. The memory store uses a key that lives only as long as the
 * process; Redis, shared by several instances, requires the variable (a key
 * file per instance would make each unable to read the others' records).
 */
export const serverCrypto = (dataDir: string, store: StoreKind) =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const configured = yield* Config.option(Config.redacted("RS_TOKENS_ENC_KEY"))
    if (Option.isSome(configured)) return NodeCrypto.layerConfig()
    if (store === "redis") {
      return yield* Effect.fail(
        ConfigError.MissingData(["RS_TOKENS_ENC_KEY"], "required with STORE=redis: every instance must share one key")
      )
    }
    if (store === "memory") {
      yield* Effect.logInfo("RS_TOKENS_ENC_KEY is not set: the memory store uses a key that lives as long as this process")
      return NodeCrypto.layerEphemeral
    }
    const file = yield* loadOrCreateKey(dataDir)
    if (file.generated) {
      yield* Effect.logInfo("RS_TOKENS_ENC_KEY is not set: generated an encryption key (mode 0600); back it up with the store")
        .pipe(Effect.annotateLogs("path", file.path))
    }
    const fromFile = ConfigProvider.fromMap(new Map([["RS_TOKENS_ENC_KEY", Redacted.value(file.key)]])).pipe(
      ConfigProvider.orElse(() => ConfigProvider.fromEnv())
    )
    const options = yield* Effect.withConfigProvider(keyringConfig, fromFile)
    return NodeCrypto.layer(options)
  }))
