/**
 * The limits on anonymous callers, from the environment: `TRUST_PROXY`, the
 * rate limits (`<count>/<window>`, e.g. `20/1h`, `10/15m`, or `off`) and the
 * bounds on registration documents and authorization requests. Every
 * variable has the library's default; a value that cannot be used fails
 * startup with one line naming the variable.
 */
import { Config, ConfigError, Either, Option } from "effect"
import { parseTrustProxy, type TrustProxy } from "../http/clientAddress.ts"
import { DEFAULT_LIMITS, type LimitsOptions, type RateLimit } from "../http/limits.ts"
import { DEFAULT_AUTHORIZATION_REQUEST_LIMITS, DEFAULT_CLIENT_METADATA_LIMITS } from "../oauth/config.ts"

const invalid = (name: string, message: string) => ConfigError.InvalidData([name], message)

const UNIT_MILLIS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** `20/1h`, `10/15m`, `30/60s`, `5/d` (count per window; units s, m, h, d), or `off`. */
export const parseRateLimit = (name: string, value: string): Either.Either<RateLimit | false, ConfigError.ConfigError> => {
  const text = value.trim().toLowerCase()
  if (text === "off") return Either.right(false)
  const match = /^(\d{1,7})\s*\/\s*(\d{0,6})\s*([smhd])$/.exec(text)
  const limit = Number(match?.[1])
  const span = match?.[2] === "" ? 1 : Number(match?.[2])
  const unit = UNIT_MILLIS[match?.[3] ?? ""]
  if (match === null || unit === undefined || limit < 1 || limit > 1_000_000 || span < 1 || span * unit > 365 * UNIT_MILLIS["d"]!) {
    return Either.left(invalid(name, "expected <count>/<window> such as 20/1h, 10/15m or 30/60s (units s, m, h, d; at most 365 days), or off"))
  }
  return Either.right({ limit, window: span * unit })
}

/** A rate limit variable; `fallback` is written as the variable would be, the library's default (`DEFAULT_LIMITS`). */
const rateConfig = (name: string, fallback: string) =>
  Config.string(name).pipe(Config.withDefault(fallback), Config.mapOrFail((value) => parseRateLimit(name, value)))

const count = (name: string, fallback: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: "expected a whole number of at least 1", validation: (n) => n >= 1 }),
    Config.withDefault(fallback)
  )

/**
 * `TRUST_PROXY`: unset (the socket's peer is the client), a number of proxies
 * always in front (`1`), or the proxies' addresses and networks, comma
 * separated (`10.0.0.0/8,loopback`; also `private`, `linklocal`).
 */
export const parseTrustProxySetting = (name: string, value: string): Either.Either<Option.Option<TrustProxy>, ConfigError.ConfigError> => {
  const trimmed = value.trim()
  if (trimmed === "" || trimmed === "0" || trimmed.toLowerCase() === "off") return Either.right(Option.none())
  const trust: TrustProxy = /^\d+$/.test(trimmed) ? { hops: Number(trimmed) } : { proxies: trimmed.split(",").map((entry) => entry.trim()) }
  const parsed = parseTrustProxy(trust)
  return typeof parsed === "string" ? Either.left(invalid(name, parsed)) : Either.right(Option.some(trust))
}

/** The client-address and limits settings. */
export interface LimitsSettings {
  readonly trustProxy: Option.Option<TrustProxy>
  readonly limits: LimitsOptions
}

/** `TRUST_PROXY`. */
export const trustProxyConfig: Config.Config<Option.Option<TrustProxy>> = Config.string("TRUST_PROXY").pipe(
  Config.withDefault(""),
  Config.mapOrFail((value) => parseTrustProxySetting("TRUST_PROXY", value))
)

/** The limits' variables (see README, "Limits on anonymous callers"); no Node built-in, so a Worker reads them too. */
export const limitsOptionsConfig: Config.Config<LimitsOptions> = Config.all({
  register: Config.all({
    perAddress: rateConfig("REGISTER_RATE_LIMIT", "20/1h"),
    maxDocumentBytes: count("REGISTER_MAX_BYTES", DEFAULT_LIMITS.maxDocumentBytes),
    maxRedirectUris: count("REGISTER_MAX_REDIRECT_URIS", DEFAULT_CLIENT_METADATA_LIMITS.maxRedirectUris),
    maxUriLength: count("REGISTER_MAX_URI_LENGTH", DEFAULT_CLIENT_METADATA_LIMITS.maxUriLength),
    maxTextLength: count("REGISTER_MAX_TEXT_LENGTH", DEFAULT_CLIENT_METADATA_LIMITS.maxTextLength),
    maxScopeLength: count("REGISTER_MAX_SCOPE_LENGTH", DEFAULT_CLIENT_METADATA_LIMITS.maxScopeLength),
    maxContacts: count("REGISTER_MAX_CONTACTS", DEFAULT_CLIENT_METADATA_LIMITS.maxContacts)
  }),
  authorize: Config.all({
    perAddress: rateConfig("AUTHORIZE_RATE_LIMIT", "20/1m"),
    pending: Config.string("AUTHORIZE_PENDING_LIMIT").pipe(
      Config.withDefault(String(DEFAULT_LIMITS.pendingAuthorizations)),
      Config.mapOrFail((value): Either.Either<number | false, ConfigError.ConfigError> => {
        if (value.trim().toLowerCase() === "off") return Either.right(false)
        const n = Number(value.trim())
        return /^\d{1,7}$/.test(value.trim()) && n >= 1 && n <= 1_000_000
          ? Either.right(n)
          : Either.left(invalid("AUTHORIZE_PENDING_LIMIT", "expected a whole number from 1 to 1,000,000, or off"))
      })
    ),
    maxStateLength: count("AUTHORIZE_MAX_STATE_LENGTH", DEFAULT_AUTHORIZATION_REQUEST_LIMITS.maxStateLength),
    maxParameterLength: count("AUTHORIZE_MAX_PARAMETER_LENGTH", DEFAULT_AUTHORIZATION_REQUEST_LIMITS.maxParameterLength)
  }),
  signIn: Config.all({
    failuresPerAddress: rateConfig("SIGN_IN_FAILURES_PER_ADDRESS", "10/15m"),
    failuresPerUser: rateConfig("SIGN_IN_FAILURES_PER_USER", "100/15m"),
    failuresPerAuthorization: count("SIGN_IN_FAILURES_PER_AUTHORIZATION", DEFAULT_LIMITS.signInFailuresPerAuthorization)
  })
})

/** `TRUST_PROXY` and the limits' variables. */
export const limitsConfig: Config.Config<LimitsSettings> = Config.all({ trustProxy: trustProxyConfig, limits: limitsOptionsConfig })
