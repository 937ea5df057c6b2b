/**
 * The Worker's settings, read from its `env`: vars (`wrangler.toml [vars]`)
 * and secrets (`wrangler secret put`) arrive there as strings, and are read
 * through Effect's `Config` from a provider over them, with the same parsing
 * as `npm start` (`src/server/config.ts`) where a variable means the same.
 * No `node:` import: part of the Worker bundle. A Worker has no `PORT`,
 * `HOST` or `DATA_DIR`; its public URL is required, and its store is a binding.
 */
import { Config, ConfigError, ConfigProvider, Either, LogLevel, Option } from "effect"
import type { ApiKeyUser } from "../http/consent/signIn.ts"
import type { LimitsOptions } from "../http/limits.ts"
import { isLoopbackHost } from "../oauth/loopback.ts"
import {
  accessTokenFormatConfig,
  apiKeysConfig,
  devAutoApproveConfig,
  dpopNonceConfig,
  dpopProofMaxAgeConfig,
  positive,
  scopesConfig,
  urlConfig
} from "../server/config.ts"
import { limitsOptionsConfig } from "../server/limitsConfig.ts"

/** The backends a Worker may keep its state in: Durable Objects (atomic), or KV alone (not atomic: see README). */
export const WORKER_STORES = ["durable", "kv"] as const

/** What `STORE` names. */
export type WorkerStoreKind = typeof WORKER_STORES[number]

/** The Worker's settings. */
export interface WorkerSettings {
  /** The issuer and base of every published URL (`PUBLIC_URL`, required): the Worker's own https URL. */
  readonly publicUrl: string
  /** `STORE`: `durable` (default) or `kv`. */
  readonly store: WorkerStoreKind
  /** `STORE_NAME`: the Durable Object store's name (default `default`); stores of other names are separate. */
  readonly storeName: string
  /** `SCOPES`: the scopes the server knows; unset: the scopes the tools require. */
  readonly scopes: Option.Option<ReadonlyArray<string>>
  /** `API_KEYS` (a secret): who may sign in on the consent page. */
  readonly apiKeys: ReadonlyArray<ApiKeyUser>
  /** `DEV_AUTO_APPROVE`: approve every authorization as this user; only with a loopback `PUBLIC_URL` (`wrangler dev`, tests). */
  readonly devAutoApprove: Option.Option<string>
  readonly accessTokenTtlSeconds: number
  readonly accessTokenFormat: "jwt" | "opaque"
  readonly maxBodyBytes: number
  /** The limits on anonymous callers (`REGISTER_*`, `AUTHORIZE_*`, `SIGN_IN_*`, as for `npm start`). */
  readonly limits: LimitsOptions
  /** `DPOP_NONCE`: DPoP proofs must carry the server's nonce (default off). */
  readonly dpopNonce: boolean
  /** `DPOP_PROOF_MAX_AGE`: seconds a DPoP proof is accepted after its `iat` (default 60). */
  readonly dpopProofMaxAgeSeconds: number
  /** `LOG_LEVEL` (default `info`). */
  readonly logLevel: LogLevel.LogLevel
}

/** The settings from the Worker's vars and secrets. */
export const workerConfig: Config.Config<WorkerSettings> = Config.all({
  publicUrl: urlConfig("PUBLIC_URL"),
  store: Config.literal(...WORKER_STORES)("STORE").pipe(Config.withDefault("durable" as const)),
  storeName: Config.string("STORE_NAME").pipe(
    Config.validate({ message: "expected 1 to 64 letters, digits, '.', '_' or '-'", validation: (name) => /^[A-Za-z0-9._-]{1,64}$/.test(name) }),
    Config.withDefault("default")
  ),
  scopes: Config.map(scopesConfig("SCOPES", ""), (scopes) => scopes.length === 0 ? Option.none() : Option.some(scopes)),
  apiKeys: apiKeysConfig,
  devAutoApprove: devAutoApproveConfig,
  accessTokenTtlSeconds: positive("ACCESS_TOKEN_TTL", 3600),
  accessTokenFormat: accessTokenFormatConfig,
  maxBodyBytes: positive("MAX_BODY_BYTES", 1024 * 1024),
  limits: limitsOptionsConfig,
  dpopNonce: dpopNonceConfig,
  dpopProofMaxAgeSeconds: dpopProofMaxAgeConfig,
  logLevel: Config.logLevel("LOG_LEVEL").pipe(Config.withDefault(LogLevel.Info))
}).pipe(
  Config.mapOrFail((settings): Either.Either<WorkerSettings, ConfigError.ConfigError> =>
    Option.isSome(settings.devAutoApprove) && !isLoopbackHost(new URL(settings.publicUrl).hostname)
      ? Either.left(ConfigError.InvalidData(["DEV_AUTO_APPROVE"], "refused unless PUBLIC_URL is a loopback address (wrangler dev)"))
      : Either.right(settings)
  )
)

/** A `ConfigProvider` over the string values of a Worker's `env` (vars and secrets; bindings are objects and left out). */
export const envConfigProvider = (env: object): ConfigProvider.ConfigProvider =>
  ConfigProvider.fromMap(
    new Map(Object.entries(env).filter((entry): entry is [string, string] => typeof entry[1] === "string"))
  )
