/**
 * The server's settings, read from the environment. Every variable has a
 * default that makes `npm start` work on a clean checkout; a value that cannot
 * be used fails startup with a `ConfigError` naming the variable.
 */
import { Config, ConfigError, Context, Effect, Either, Option, Redacted } from "effect"
import type { ApiKeyUser } from "../http/consent/signIn.ts"
import { isServerUrl } from "../oauth/config.ts"
import { isLoopbackHost } from "../oauth/loopback.ts"
import { parseScope } from "../oauth/scopes.ts"
import { limitsConfig, type LimitsSettings } from "./limitsConfig.ts"
import { type TelemetrySettings, telemetryConfig } from "./telemetryConfig.ts"

/** The storage backends `STORE` may name. */
export const STORE_KINDS = ["memory", "sqlite", "file", "redis"] as const
export type StoreKind = typeof STORE_KINDS[number]

/** Upstream federation (seed 002's orchestrated auth): `UPSTREAM_*`. */
export interface UpstreamSettings {
  readonly issuer: string
  readonly clientId: string
  readonly clientSecret: Option.Option<Redacted.Redacted<string>>
  readonly scopes: ReadonlyArray<string>
  /** Refresh the provider's access token this many seconds before it expires (seed 002's `skewSeconds`). */
  readonly refreshSkewSeconds: number
}

/** Where `/metrics` is served (`METRICS`): nowhere, on the main server, or on a port of its own (on `HOST`). */
export type MetricsSetting =
  | { readonly _tag: "Off" }
  | { readonly _tag: "Main" }
  | { readonly _tag: "Port"; readonly port: number }

export interface ServerSettings extends LimitsSettings {
  readonly port: number
  readonly host: string
  /** The issuer and the base of every URL the server publishes; no trailing slash. */
  readonly publicUrl: string
  readonly store: StoreKind
  /** Where generated secrets (and, by default, the SQLite database) live. */
  readonly dataDir: string
  readonly apiKeys: ReadonlyArray<ApiKeyUser>
  /** Development switch: approve every authorization as this user, without a page. Loopback hosts only. */
  readonly devAutoApprove: Option.Option<string>
  readonly upstream: Option.Option<UpstreamSettings>
  /** The scopes the server knows (the tools' scopes). */
  readonly scopes: ReadonlyArray<string>
  readonly accessTokenTtlSeconds: number
  readonly accessTokenFormat: "jwt" | "opaque"
  readonly maxBodyBytes: number
  /** Which requests get a log line (`LOG_REQUESTS`): all, only refused and failed ones, or none. */
  readonly logRequests: "all" | "errors" | "off"
  /** Resolve `client_id` URLs as Client ID Metadata Documents (`CLIENT_METADATA_DOCUMENTS`, default on). */
  readonly clientMetadataDocuments: boolean
  /** Development switch: metadata documents may be fetched from loopback addresses. Loopback hosts only. */
  readonly clientMetadataAllowLoopback: boolean
  /** What the consent page says each scope allows (`SCOPE_DESCRIPTIONS`, over the built-in ones). */
  readonly scopeDescriptions: Readonly<Record<string, string>>
  /** DPoP proofs must carry the server's nonce (`DPOP_NONCE`, default off). */
  readonly dpopNonce: boolean
  /** How long after its `iat` a DPoP proof is accepted (`DPOP_PROOF_MAX_AGE`, seconds, default 60). */
  readonly dpopProofMaxAgeSeconds: number
  /** `/metrics` in the Prometheus text format (`METRICS`, default off). */
  readonly metrics: MetricsSetting
  /** OTLP export of traces and metrics (`OTEL_EXPORTER_OTLP_*`, default none). */
  readonly telemetry: TelemetrySettings
}

/** Whether the stores are instrumented: `/metrics` is served or metrics are exported over OTLP. */
export const metricsEnabled = (settings: Pick<ServerSettings, "metrics" | "telemetry">): boolean =>
  settings.metrics._tag !== "Off" || Option.isSome(settings.telemetry.metrics)

/** `off`, `on` (the main server's `/metrics`) or a port number (`/metrics` there, on `HOST`). */
export const parseMetrics = (name: string, value: string): Either.Either<MetricsSetting, ConfigError.ConfigError> => {
  const trimmed = value.trim().toLowerCase()
  if (trimmed === "off" || trimmed === "") return Either.right({ _tag: "Off" })
  if (trimmed === "on") return Either.right({ _tag: "Main" })
  const port = /^\d{1,5}$/.test(trimmed) ? Number(trimmed) : Number.NaN
  return port >= 1 && port <= 65535
    ? Either.right({ _tag: "Port", port })
    : Either.left(invalid(name, "expected off, on or a port number"))
}

/** The scope the `whoami` tool needs. */
export const TOOLS_SCOPE = "mcp:tools"
/** The scope the upstream tool needs. */
export const UPSTREAM_SCOPE = "mcp:upstream"

/** The consent page's descriptions of the built-in scopes. */
export const DEFAULT_SCOPE_DESCRIPTIONS: Readonly<Record<string, string>> = {
  [TOOLS_SCOPE]: "Use this server's tools on your behalf (whoami, greet).",
  [UPSTREAM_SCOPE]: "Call your account at the upstream provider through this server."
}

/** A JSON object of scope -> description (`SCOPE_DESCRIPTIONS`), laid over the built-in descriptions. */
export const parseScopeDescriptions = (
  name: string,
  value: string
): Either.Either<Readonly<Record<string, string>>, ConfigError.ConfigError> => {
  if (value.trim() === "") return Either.right(DEFAULT_SCOPE_DESCRIPTIONS)
  let parsed: unknown
  try {
    parsed = JSON.parse(value)
  } catch {
    return Either.left(invalid(name, "expected a JSON object of scope -> description"))
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return Either.left(invalid(name, "expected a JSON object of scope -> description"))
  }
  const descriptions: Record<string, string> = { ...DEFAULT_SCOPE_DESCRIPTIONS }
  for (const [scope, description] of Object.entries(parsed)) {
    if (parseScope(scope)?.length !== 1 || typeof description !== "string" || description.length > 500) {
      return Either.left(invalid(name, `the description of ${JSON.stringify(scope.slice(0, 40))} must be a string of at most 500 characters`))
    }
    descriptions[scope] = description
  }
  return Either.right(descriptions)
}

const invalid = (name: string, message: string) => ConfigError.InvalidData([name], message)

/** `user=key` pairs separated by commas; keys of at least 16 characters, users and keys unique. */
export const parseApiKeys = (name: string, value: string): Either.Either<ReadonlyArray<ApiKeyUser>, ConfigError.ConfigError> => {
  const users: Array<ApiKeyUser> = []
  for (const entry of value.split(",").map((s) => s.trim()).filter((s) => s.length > 0)) {
    const at = entry.indexOf("=")
    const user = at > 0 ? entry.slice(0, at).trim() : ""
    const key = at > 0 ? entry.slice(at + 1).trim() : ""
    if (!/^[A-Za-z0-9._@-]{1,64}$/.test(user)) {
      return Either.left(invalid(name, "expected user=key pairs separated by commas (user: letters, digits, . _ @ -)"))
    }
    if (key.length < 16) return Either.left(invalid(name, `the key of user ${user} is shorter than 16 characters`))
    if (users.some((u) => u.user === user || Redacted.value(u.apiKey) === key)) {
      return Either.left(invalid(name, `user ${user} or its key appears twice`))
    }
    users.push({ user, apiKey: Redacted.make(key) })
  }
  return Either.right(users)
}

/** Scopes separated by spaces in the variable `name` (`fallback` when unset). Shared with the Worker's settings. */
export const scopesConfig = (name: string, fallback: string) =>
  Config.string(name).pipe(
    Config.withDefault(fallback),
    Config.mapOrFail((value) => {
      const scopes = parseScope(value)
      return scopes === undefined ? Either.left(invalid(name, "expected scopes separated by spaces")) : Either.right(scopes)
    })
  )

/** A server URL in the variable `name` (https; http only on a loopback host), without trailing slashes. */
export const urlConfig = (name: string) =>
  Config.string(name).pipe(
    Config.mapOrFail((value) => {
      const trimmed = value.replace(/\/+$/, "")
      return isServerUrl(trimmed)
        ? Either.right(trimmed)
        : Either.left(invalid(name, "expected an https URL (http only on a loopback host)"))
    })
  )

/** A positive integer in the variable `name` (`fallback` when unset). */
export const positive = (name: string, fallback: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: "expected a positive integer", validation: (n) => n > 0 }),
    Config.withDefault(fallback)
  )

const upstreamConfig: Config.Config<Option.Option<UpstreamSettings>> = Config.all({
  issuer: Config.option(urlConfig("UPSTREAM_ISSUER")),
  clientId: Config.option(Config.nonEmptyString("UPSTREAM_CLIENT_ID")),
  clientSecret: Config.option(Config.redacted("UPSTREAM_CLIENT_SECRET")),
  scopes: scopesConfig("UPSTREAM_SCOPES", "openid"),
  refreshSkewSeconds: Config.integer("UPSTREAM_REFRESH_SKEW_SECONDS").pipe(
    Config.validate({ message: "expected a non-negative integer", validation: (n) => n >= 0 }),
    Config.withDefault(60)
  )
}).pipe(
  Config.mapOrFail(({ clientId, clientSecret, issuer, refreshSkewSeconds, scopes }) => {
    if (Option.isNone(issuer)) return Either.right(Option.none())
    if (Option.isNone(clientId)) return Either.left(invalid("UPSTREAM_CLIENT_ID", "required when UPSTREAM_ISSUER is set"))
    return Either.right(Option.some({ issuer: issuer.value, clientId: clientId.value, clientSecret, scopes, refreshSkewSeconds }))
  })
)

/** `DPOP_NONCE`: `on` requires the server's nonce in DPoP proofs (default `off`). Shared with the Worker's settings. */
export const dpopNonceConfig: Config.Config<boolean> = Config.literal("on", "off")("DPOP_NONCE").pipe(
  Config.withDefault("off" as const),
  Config.map((value) => value === "on")
)

/** `DPOP_PROOF_MAX_AGE`: seconds a DPoP proof is accepted after its `iat` (default 60). Shared with the Worker's settings. */
export const dpopProofMaxAgeConfig: Config.Config<number> = positive("DPOP_PROOF_MAX_AGE", 60)

/** `API_KEYS`: `user=key` pairs (none when unset). */
export const apiKeysConfig: Config.Config<ReadonlyArray<ApiKeyUser>> = Config.string("API_KEYS").pipe(
  Config.withDefault(""),
  Config.mapOrFail((value) => parseApiKeys("API_KEYS", value))
)

/** `DEV_AUTO_APPROVE`: a user name, or none. Whether the address allows it is the caller's check. */
export const devAutoApproveConfig: Config.Config<Option.Option<string>> = Config.option(Config.string("DEV_AUTO_APPROVE").pipe(
  Config.validate({ message: "expected a user name", validation: (user) => /^[A-Za-z0-9._@-]{1,64}$/.test(user) })
))

/** `ACCESS_TOKEN_FORMAT`: `jwt` (default) or `opaque`. */
export const accessTokenFormatConfig: Config.Config<"jwt" | "opaque"> = Config.literal("jwt", "opaque")("ACCESS_TOKEN_FORMAT").pipe(
  Config.withDefault("jwt" as const)
)

/** `SCOPE_DESCRIPTIONS`: what the consent page says of each scope, over the built-in descriptions. */
export const scopeDescriptionsConfig = Config.string("SCOPE_DESCRIPTIONS").pipe(
  Config.withDefault(""),
  Config.mapOrFail((value) => parseScopeDescriptions("SCOPE_DESCRIPTIONS", value))
)

/** The settings from the environment (see README, "Configuration"). */
export const serverConfig: Config.Config<ServerSettings> = Config.all({
  port: Config.port("PORT").pipe(Config.withDefault(8787)),
  host: Config.string("HOST").pipe(Config.withDefault("127.0.0.1")),
  publicUrl: Config.option(urlConfig("PUBLIC_URL")),
  store: Config.literal(...STORE_KINDS)("STORE").pipe(Config.withDefault("sqlite" as const)),
  dataDir: Config.string("DATA_DIR").pipe(Config.withDefault("./data")),
  apiKeys: apiKeysConfig,
  devAutoApprove: devAutoApproveConfig,
  upstream: upstreamConfig,
  scopes: scopesConfig("SCOPES", `${TOOLS_SCOPE} ${UPSTREAM_SCOPE}`),
  accessTokenTtlSeconds: positive("ACCESS_TOKEN_TTL", 3600),
  accessTokenFormat: accessTokenFormatConfig,
  maxBodyBytes: positive("MAX_BODY_BYTES", 1024 * 1024),
  logRequests: Config.literal("all", "errors", "off")("LOG_REQUESTS").pipe(Config.withDefault("all" as const)),
  clientMetadataDocuments: Config.literal("on", "off")("CLIENT_METADATA_DOCUMENTS").pipe(
    Config.withDefault("on" as const),
    Config.map((value) => value === "on")
  ),
  clientMetadataAllowLoopback: Config.boolean("CLIENT_METADATA_ALLOW_LOOPBACK").pipe(Config.withDefault(false)),
  scopeDescriptions: scopeDescriptionsConfig,
  limits: limitsConfig,
  dpopNonce: dpopNonceConfig,
  dpopProofMaxAgeSeconds: dpopProofMaxAgeConfig,
  metrics: Config.string("METRICS").pipe(
    Config.withDefault("off"),
    Config.mapOrFail((value) => parseMetrics("METRICS", value))
  ),
  telemetry: telemetryConfig
}).pipe(
  Config.map(({ limits, ...settings }) => ({ ...settings, ...limits })),
  Config.mapOrFail((settings): Either.Either<ServerSettings, ConfigError.ConfigError> => {
    const urlHost = settings.host.includes(":") ? `[${settings.host}]` : settings.host
    const loopback = isLoopbackHost(settings.host)
    const publicUrl = Option.getOrElse(settings.publicUrl, () => `http://${loopback ? urlHost : "127.0.0.1"}:${settings.port}`)
    if (Option.isSome(settings.devAutoApprove) && !loopback) {
      return Either.left(invalid("DEV_AUTO_APPROVE", `refused on the non-loopback HOST ${settings.host}`))
    }
    if (settings.clientMetadataAllowLoopback && !loopback) {
      return Either.left(invalid("CLIENT_METADATA_ALLOW_LOOPBACK", `refused on the non-loopback HOST ${settings.host}`))
    }
    if (Option.isSome(settings.devAutoApprove) && Option.isSome(settings.upstream)) {
      return Either.left(invalid("DEV_AUTO_APPROVE", "cannot be combined with UPSTREAM_ISSUER: the upstream provider signs users in"))
    }
    if (settings.metrics._tag === "Port" && settings.metrics.port === settings.port) {
      return Either.left(invalid("METRICS", `the metrics port must differ from PORT (${settings.port}); use METRICS=on to serve /metrics there`))
    }
    if (Option.isNone(settings.publicUrl) && !loopback) {
      return Either.left(invalid("PUBLIC_URL", `required when HOST (${settings.host}) is not a loopback address`))
    }
    return Either.right({ ...settings, publicUrl })
  })
)

/** A configuration failure as the one line startup prints. */
export const describeConfigError = (error: ConfigError.ConfigError): string =>
  `invalid configuration: ${String(error).replace(/\s+/g, " ").trim()}`

/** Read the settings; the failure is one line naming the variable. */
export const loadServerSettings: Effect.Effect<ServerSettings, string> = Effect.mapError(serverConfig, describeConfigError)

/** The server's settings as a service, for the handlers. */
export class Settings extends Context.Tag("mcp-oauth-store/ServerSettings")<Settings, ServerSettings>() {}
