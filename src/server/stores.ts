/**
 * The one place the server chooses a backend (`STORE`): every store, and the
 * `RefreshLock` its upstream refreshes share (Redis's leases across
 * instances, an in-process lock otherwise).
 */
import { Config, type ConfigError, Effect, Layer } from "effect"
import { join } from "node:path"
import * as FileStore from "../layers/file/index.ts"
import * as MemoryStore from "../layers/memory/index.ts"
import * as RedisStore from "../layers/redis/index.ts"
import * as SqliteStore from "../layers/sqlite/index.ts"
import * as LocalRefreshLock from "../oauth/refreshLock.ts"
import type { ClientStore } from "../services/ClientStore.ts"
import type { McpEventBus } from "../services/McpEventBus.ts"
import type { McpEventStore } from "../services/McpEventStore.ts"
import type { Crypto } from "../services/Crypto.ts"
import type { ProviderTokenStore } from "../services/ProviderTokenStore.ts"
import type { RateLimiter } from "../services/RateLimiter.ts"
import type { RefreshLock } from "../services/RefreshLock.ts"
import type { ReplayCache } from "../services/ReplayCache.ts"
import type { SessionStore } from "../services/SessionStore.ts"
import type { SigningKeyStore } from "../services/SigningKeyStore.ts"
import type { StoreError } from "../services/StoreError.ts"
import type { TokenStore } from "../services/TokenStore.ts"
import type { StoreKind } from "./config.ts"

/** What the server needs of a backend. */
export type ServerStores =
  | TokenStore
  | SessionStore
  | ProviderTokenStore
  | ClientStore
  | SigningKeyStore
  | RateLimiter
  | RefreshLock
  | ReplayCache
  | McpEventBus
  | McpEventStore

/** Where a single-process backend keeps its data: its variable when set, else a file in `DATA_DIR`. */
const pathIn = (variable: string, dataDir: string, file: string) =>
  Config.string(variable).pipe(Config.withDefault(join(dataDir, file)))

const inProcess = <E>(stores: Layer.Layer<Exclude<ServerStores, RefreshLock>, E, Crypto>) =>
  Layer.merge(stores, LocalRefreshLock.layer)

/** The backend `STORE` names, with the settings of its own variables (`SQLITE_PATH`, `RS_TOKENS_FILE`, `REDIS_*`). */
export const serverStores = (
  kind: StoreKind,
  dataDir: string
): Layer.Layer<ServerStores, StoreError | ConfigError.ConfigError, Crypto> => {
  switch (kind) {
    case "memory":
      return inProcess(MemoryStore.layer())
    case "sqlite":
      return inProcess(Layer.unwrapEffect(Effect.map(pathIn("SQLITE_PATH", dataDir, "store.db"), (filename) => SqliteStore.layer({ filename }))))
    case "file":
      return inProcess(Layer.unwrapEffect(Effect.map(pathIn("RS_TOKENS_FILE", dataDir, "tokens.enc"), (path) => FileStore.layer({ path }))))
    case "redis":
      return RedisStore.layerConfig()
  }
}

/** Where the data of a backend lives, for the startup log (no credentials). */
export const storeLocation = (kind: StoreKind, dataDir: string): Effect.Effect<string, ConfigError.ConfigError> => {
  switch (kind) {
    case "memory":
      return Effect.succeed("process memory")
    case "sqlite":
      return pathIn("SQLITE_PATH", dataDir, "store.db")
    case "file":
      return pathIn("RS_TOKENS_FILE", dataDir, "tokens.enc")
    case "redis":
      return Effect.succeed("REDIS_URL")
  }
}
