/**
 * Which store a command works on, and its keys: a store named on the command
 * line, or the one the server's own settings choose (`STORE`, `DATA_DIR`,
 * `SQLITE_PATH`, `RS_TOKENS_FILE`, `REDIS_*`), read by the server's own
 * functions; the keys as the server reads them (`RS_TOKENS_ENC_KEY`,
 * `RS_TOKENS_ENC_KEYRING`, `RS_TOKENS_HASH_KEY`, or the key file in
 * `DATA_DIR`).
 *
 * A store is named on the command line as:
 *   sqlite:PATH                                e.g. sqlite:./data/store.db
 *   file:PATH                                  e.g. file:./data/tokens.enc
 *   redis://[user:password@]HOST[:PORT][/DB][?prefix=PREFIX]   (rediss:// for TLS)
 * The Redis key prefix is `prefix`, else `REDIS_KEY_PREFIX`, else `mcp:`.
 */
import { Config, type ConfigError, Duration, Effect, Either, Layer, Option, Redacted } from "effect"
import { existsSync } from "node:fs"
import { join } from "node:path"
import * as FileStore from "../layers/file/index.ts"
import * as RedisStore from "../layers/redis/index.ts"
import * as SqliteStore from "../layers/sqlite/index.ts"
import type { Crypto } from "../services/Crypto.ts"
import type { SessionStore } from "../services/SessionStore.ts"
import type { StoreMaintenance } from "../services/StoreMaintenance.ts"
import { StoreError } from "../services/StoreError.ts"
import type { TokenStore } from "../services/TokenStore.ts"
import { loadServerSettings } from "../server/config.ts"
import { KEY_FILE_NAME, serverCrypto } from "../server/secrets.ts"
import { storeLocation } from "../server/stores.ts"
import { InvalidInput, StoreUnreachable } from "./errors.ts"

/** A store the tool can open. */
export type StoreSpec =
  | { readonly _tag: "sqlite"; readonly filename: string }
  | { readonly _tag: "file"; readonly path: string }
  | {
    readonly _tag: "redis"
    readonly connection: RedisStore.RedisConnectionOptions
    /** `host:port/db`, never the credentials. */
    readonly display: string
  }

/** What every command gets from an opened store. */
export type OpenedStore = StoreMaintenance | TokenStore | SessionStore

const EXPECTED = "expected sqlite:PATH, file:PATH or redis://HOST:PORT/DB (rediss:// for TLS)"

/** The store's name as it may be shown: paths, and Redis without credentials. */
export const displayOf = (spec: StoreSpec): string =>
  spec._tag === "redis" ? `redis ${spec.display}` : spec._tag === "sqlite" ? `sqlite ${spec.filename}` : `file ${spec.path}`

const redisPrefix = Config.option(Config.string("REDIS_KEY_PREFIX"))

/** A Redis URL: the prefix taken out of the query; the rest is ioredis'. */
const parseRedis = (text: string): Effect.Effect<StoreSpec, InvalidInput | ConfigError.ConfigError> =>
  Effect.gen(function*() {
    const url = yield* Either.try({
      try: () => new URL(text),
      catch: () => new InvalidInput({ description: `the Redis URL does not parse: ${EXPECTED}` })
    })
    if (url.hostname === "") return yield* new InvalidInput({ description: `the Redis URL names no host: ${EXPECTED}` })
    const db = url.pathname.replace(/^\//, "")
    if (db !== "" && !/^\d+$/.test(db)) {
      return yield* new InvalidInput({ description: "the Redis URL's path must be a database number (redis://HOST:PORT/0)" })
    }
    const fromQuery = url.searchParams.get("prefix")
    url.searchParams.delete("prefix")
    const keyPrefix = fromQuery ?? Option.getOrElse(yield* redisPrefix, () => "mcp:")
    const display = `${url.hostname}:${url.port === "" ? "6379" : url.port}/${db === "" ? "0" : db} (prefix ${keyPrefix})`
    return { _tag: "redis", connection: { url: Redacted.make(url.toString()), keyPrefix }, display } as const
  })

/** Parse a store named on the command line. Fails with `InvalidInput` naming what is wrong (never a credential). */
export const parseStore = (text: string): Effect.Effect<StoreSpec, InvalidInput | ConfigError.ConfigError> => {
  const scheme = /^([a-z]+):/i.exec(text)?.[1]?.toLowerCase()
  switch (scheme) {
    case "sqlite":
    case "file": {
      const path = text.slice(scheme.length + 1).replace(/^\/\/(?=\.|\/)/, "")
      if (path === "") return Effect.fail(new InvalidInput({ description: `${scheme}: names no file: ${EXPECTED}` }))
      return Effect.succeed(scheme === "sqlite" ? { _tag: "sqlite", filename: path } : { _tag: "file", path })
    }
    case "redis":
    case "rediss":
      return parseRedis(text)
    case "memory":
      return Effect.fail(new InvalidInput({ description: "a memory store lives inside its server's process: there is nothing to open from here" }))
    default:
      return Effect.fail(
        new InvalidInput({
          description: `unknown store ${scheme === undefined ? "name" : `scheme "${scheme}:"`}: ${EXPECTED}`
        })
      )
  }
}

/** The store the server's settings choose (`STORE` and the variables of that backend). */
export const storeFromSettings: Effect.Effect<StoreSpec, InvalidInput | ConfigError.ConfigError> = Effect.gen(function*() {
  const settings = yield* Effect.mapError(loadServerSettings, (description) => new InvalidInput({ description }))
  switch (settings.store) {
    case "memory":
      return yield* new InvalidInput({
        description: "STORE=memory: a memory store lives inside its server's process; name a store with --store"
      })
    case "sqlite":
      return { _tag: "sqlite", filename: yield* storeLocation("sqlite", settings.dataDir) } as const
    case "file":
      return { _tag: "file", path: yield* storeLocation("file", settings.dataDir) } as const
    case "redis": {
      const connection = yield* RedisStore.connectionConfig
      const url = connection.url === undefined
        ? undefined
        : Redacted.isRedacted(connection.url)
        ? Redacted.value(connection.url)
        : connection.url
      const shown = url === undefined
        ? `${connection.host ?? "127.0.0.1"}:${connection.port ?? 6379}/${connection.db ?? 0}`
        : Either.getOrElse(Either.try(() => {
          const parsed = new URL(url)
          return `${parsed.hostname}:${parsed.port === "" ? "6379" : parsed.port}/${parsed.pathname.replace(/^\//, "") || "0"}`
        }), () => "REDIS_URL")
      return { _tag: "redis", connection, display: `${shown} (prefix ${connection.keyPrefix ?? "mcp:"})` } as const
    }
  }
})

/** `--store` when given, else the server's settings. */
export const resolveStore = (named: Option.Option<string>) =>
  Option.match(named, { onNone: () => storeFromSettings, onSome: parseStore })

/**
 * The tool never sweeps: expiry is the servers' business (with their own
 * options: a default grace window here could clear refresh successor pairs a
 * server configured to keep longer), and `stats` or `--dry-run` write nothing.
 */
const NO_SWEEP = { sweepInterval: Duration.infinity } as const

/**
 * Open a store. A file that must already exist (`mustExist`: anything but a
 * migration's target) is checked first, so a typo does not create an empty
 * store; an unreachable Redis is `StoreUnreachable`.
 */
export const openStore = (
  spec: StoreSpec,
  mustExist: boolean
): Layer.Layer<OpenedStore, StoreError | InvalidInput | StoreUnreachable, Crypto> => {
  const missing = (path: string) =>
    Layer.fail(new InvalidInput({ description: `${displayOf(spec)}: no such file (${path})` }))
  switch (spec._tag) {
    case "sqlite":
      return mustExist && !existsSync(spec.filename) ? missing(spec.filename) : SqliteStore.layer({ filename: spec.filename, ...NO_SWEEP })
    case "file":
      return mustExist && !existsSync(spec.path) ? missing(spec.path) : FileStore.layer({ path: spec.path, ...NO_SWEEP })
    case "redis":
      return RedisStore.layer({ ...spec.connection, ...NO_SWEEP }).pipe(
        Layer.mapError((error): StoreError | StoreUnreachable =>
          error.method === "RedisStore.connect"
            ? new StoreUnreachable({ store: displayOf(spec), description: error.description ?? "no answer" })
            : error
        )
      )
  }
}

/**
 * `Crypto` as the server builds it, but never creating a key: the variables
 * when `RS_TOKENS_ENC_KEY` is set, else the key file in `DATA_DIR` when there
 * is one, else `InvalidInput` (a fresh key would open nothing).
 */
export const cliCrypto: Layer.Layer<Crypto, InvalidInput | ConfigError.ConfigError | StoreError, never> = Layer.unwrapEffect(
  Effect.gen(function*() {
    const settings = yield* Effect.mapError(loadServerSettings, (description) => new InvalidInput({ description }))
    const configured = yield* Config.option(Config.redacted("RS_TOKENS_ENC_KEY"))
    const keyFile = join(settings.dataDir, KEY_FILE_NAME)
    if (Option.isNone(configured) && !existsSync(keyFile)) {
      return yield* new InvalidInput({
        description: `no encryption key: set RS_TOKENS_ENC_KEY (and RS_TOKENS_ENC_KEYRING, RS_TOKENS_HASH_KEY), ` +
          `or run where DATA_DIR holds ${KEY_FILE_NAME} (looked for ${keyFile})`
      })
    }
    // A backend that reads the key file when the variable is not set: `serverCrypto` never generates one then.
    return serverCrypto(settings.dataDir, "sqlite").pipe(
      Layer.mapError((error) => error._tag === "KeyFileError" ? new InvalidInput({ description: error.message }) : error)
    )
  })
)
