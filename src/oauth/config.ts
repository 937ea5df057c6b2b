/**
 * The authorization server's settings: who it is, which resources it issues
 * tokens for, lifetimes (seed 002's defaults), the access-token format and the
 * custom-claims hook.
 */
import { type Config, type ConfigError, Context, Data, Duration, Effect, Layer } from "effect"
import { isLoopbackHost } from "./loopback.ts"

/** What the custom-claims hook (seed 002's `tokenClaims`) is told about the token being issued. */
export interface TokenClaimsContext {
  readonly subject: string
  readonly clientId: string
  readonly grantId: string
  readonly scopes: ReadonlyArray<string>
  readonly audience: string
}

/** Extra claims for an access token; they never replace the standard ones. */
export type TokenClaimsHook = (context: TokenClaimsContext) => Effect.Effect<Readonly<Record<string, unknown>>>

/** The authorization server's settings: issuer, resources, scopes, token lifetimes and format. */
export interface OAuthOptions {
  /** The issuer identifier (`iss`): an https URL (http only on a loopback host, for development). */
  readonly issuer: string
  /**
   * The RFC 8707 resource indicators tokens may be issued for; the first is
   * the audience of a token requested without `resource`. Default: the issuer.
   */
  readonly resources?: ReadonlyArray<string>
  /** The scopes this server knows; a client or request naming others is refused. Default: any scope. */
  readonly scopesSupported?: ReadonlyArray<string>
  /** Seed 002: 1 hour. */
  readonly accessTokenTtl?: Duration.DurationInput
  /** Seed 002: 30 days. */
  readonly refreshTokenTtl?: Duration.DurationInput
  /** Seed 002: 60 seconds. */
  readonly codeTtl?: Duration.DurationInput
  /** Pending authorizations (seed 002: 10 minutes). */
  readonly transactionTtl?: Duration.DurationInput
  /** The absolute lifetime of a grant and of its refresh chain (default 90 days). */
  readonly grantTtl?: Duration.DurationInput
  /** `jwt` (default, seed 002) or `opaque`: random tokens kept in the `TokenStore` (seed 000's RS tokens). */
  readonly accessTokenFormat?: "jwt" | "opaque"
  /** Seed 002's `tokenClaims`: custom claims for each access token. */
  readonly tokenClaims?: TokenClaimsHook
  /** Seed 002's `clockTolerance` for verification (default none). */
  readonly clockTolerance?: Duration.DurationInput
  /** Lifetime of generated client secrets (default: they never expire). */
  readonly clientSecretTtl?: Duration.DurationInput
  /** Bounds on client metadata, registered or fetched (`DEFAULT_CLIENT_METADATA_LIMITS` for what is not given). */
  readonly clientMetadataLimits?: Partial<ClientMetadataLimits>
  /** Bounds on the parameters of an authorization request (`DEFAULT_AUTHORIZATION_REQUEST_LIMITS` for what is not given). */
  readonly authorizationRequestLimits?: Partial<AuthorizationRequestLimits>
  /** How DPoP proofs (RFC 9449) are checked. */
  readonly dpop?: DpopOptions
}

/**
 * How much client metadata (RFC 7591 §2) a client may have stored: whoever
 * can reach `/register` can register, so each member is bounded. Counts in
 * characters (UTF-16 code units) and list entries.
 */
export interface ClientMetadataLimits {
  /** `client_name`, `software_id`, `software_version` and each of `contacts`. */
  readonly maxTextLength: number
  /** Each redirect URI, and `client_uri`, `logo_uri`, `tos_uri`, `policy_uri`, `jwks_uri`. */
  readonly maxUriLength: number
  /** `scope`, the space-separated list. */
  readonly maxScopeLength: number
  /** Entries of `redirect_uris`. */
  readonly maxRedirectUris: number
  /** Entries of `contacts`. */
  readonly maxContacts: number
}

/** The defaults: ample for real clients (an MCP client registers one to a few loopback or https URIs). */
export const DEFAULT_CLIENT_METADATA_LIMITS: ClientMetadataLimits = {
  maxTextLength: 256,
  maxUriLength: 2048,
  maxScopeLength: 1024,
  maxRedirectUris: 10,
  maxContacts: 10
}

/**
 * How long the parameters of an authorization request may be: a pending
 * authorization stores `state` as sent, so anyone could otherwise park
 * kilobytes per request for the transaction's lifetime.
 */
export interface AuthorizationRequestLimits {
  /** `state` (characters). */
  readonly maxStateLength: number
  /** Every other parameter: `client_id`, `redirect_uri`, `scope`, `resource`, `code_challenge`, ... (characters). */
  readonly maxParameterLength: number
}

/** The defaults: a client's `state` is usually 20 to 100 characters; URLs stay within 2 KiB. */
export const DEFAULT_AUTHORIZATION_REQUEST_LIMITS: AuthorizationRequestLimits = {
  maxStateLength: 1024,
  maxParameterLength: 2048
}

/** The JWS algorithms a DPoP proof may be signed with: asymmetric only (RFC 9449 §4.2; never `none` or HS*). */
export const DPOP_ALGORITHMS = [
  "ES256",
  "ES384",
  "ES512",
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "EdDSA",
  "Ed25519"
] as const

/** One of `DPOP_ALGORITHMS`. */
export type DpopAlgorithm = typeof DPOP_ALGORITHMS[number]

/** DPoP proof checking (RFC 9449 §4.3, §8, §9, §11.1). */
export interface DpopOptions {
  /** The algorithms accepted (and advertised as `dpop_signing_alg_values_supported`); default: every one of `DPOP_ALGORITHMS`. */
  readonly algorithms?: ReadonlyArray<DpopAlgorithm>
  /** How long after its `iat` a proof is accepted (default 60 seconds); its `jti` is remembered that long. */
  readonly proofMaxAge?: Duration.DurationInput
  /** How far in the future a proof's `iat` may be, for clients whose clock runs ahead (default 5 seconds). */
  readonly clockSkew?: Duration.DurationInput
  /**
   * Require a server-provided nonce in every proof (RFC 9449 §8, §9; default
   * off). Nonces are derived from the time and the lookup key of `Crypto`, so
   * every instance sharing the keyring issues and accepts the same ones; each
   * lasts one `nonceLifetime` window and the next (default 5 minutes).
   */
  readonly requireNonce?: boolean
  readonly nonceLifetime?: Duration.DurationInput
}

/** `DpopOptions` with every default filled in; durations in milliseconds. */
export interface ResolvedDpopOptions {
  readonly algorithms: ReadonlyArray<DpopAlgorithm>
  readonly proofMaxAge: number
  readonly clockSkew: number
  readonly requireNonce: boolean
  readonly nonceLifetime: number
}

/** `OAuthOptions` with every default filled in; durations in milliseconds. */
export interface ResolvedOAuthOptions {
  readonly issuer: string
  readonly resources: ReadonlyArray<string>
  readonly defaultAudience: string
  readonly scopesSupported: ReadonlyArray<string> | undefined
  readonly accessTokenTtl: number
  readonly refreshTokenTtl: number
  readonly codeTtl: number
  readonly transactionTtl: number
  readonly grantTtl: number
  readonly accessTokenFormat: "jwt" | "opaque"
  readonly tokenClaims: TokenClaimsHook | undefined
  readonly clockToleranceSeconds: number
  /** 0: never. */
  readonly clientSecretTtl: number
  readonly clientMetadataLimits: ClientMetadataLimits
  readonly authorizationRequestLimits: AuthorizationRequestLimits
  readonly dpop: ResolvedDpopOptions
}

const millis = (input: Duration.DurationInput | undefined, fallback: Duration.DurationInput): number =>
  Duration.toMillis(Duration.decode(input ?? fallback))

/** Fill in the defaults. */
export const resolveOAuthOptions = (options: OAuthOptions): ResolvedOAuthOptions => {
  // Without duplicates: every access token check accepts exactly these audiences.
  const resources = options.resources === undefined || options.resources.length === 0 ? [options.issuer] : [...new Set(options.resources)]
  return {
    issuer: options.issuer,
    resources,
    defaultAudience: resources[0] ?? options.issuer,
    scopesSupported: options.scopesSupported,
    accessTokenTtl: millis(options.accessTokenTtl, "1 hour"),
    refreshTokenTtl: millis(options.refreshTokenTtl, "30 days"),
    codeTtl: millis(options.codeTtl, "60 seconds"),
    transactionTtl: millis(options.transactionTtl, "10 minutes"),
    grantTtl: millis(options.grantTtl, "90 days"),
    accessTokenFormat: options.accessTokenFormat ?? "jwt",
    tokenClaims: options.tokenClaims,
    clockToleranceSeconds: Duration.toSeconds(Duration.decode(options.clockTolerance ?? 0)),
    clientSecretTtl: options.clientSecretTtl === undefined ? 0 : millis(options.clientSecretTtl, 0),
    clientMetadataLimits: { ...DEFAULT_CLIENT_METADATA_LIMITS, ...options.clientMetadataLimits },
    authorizationRequestLimits: { ...DEFAULT_AUTHORIZATION_REQUEST_LIMITS, ...options.authorizationRequestLimits },
    dpop: resolveDpopOptions(options.dpop ?? {})
  }
}

/** The first limit that is not a whole number of at least 1, by name; `undefined` when all are. */
const badLimit = (limits: object): string | undefined =>
  Object.entries(limits).find(([, value]) => !(Number.isInteger(value) && value >= 1))?.[0]

const resolveDpopOptions = (options: DpopOptions): ResolvedDpopOptions => ({
  algorithms: options.algorithms === undefined ? DPOP_ALGORITHMS : [...new Set(options.algorithms)],
  proofMaxAge: millis(options.proofMaxAge, "60 seconds"),
  clockSkew: millis(options.clockSkew, "5 seconds"),
  requireNonce: options.requireNonce === true,
  nonceLifetime: millis(options.nonceLifetime, "5 minutes")
})

/** Why DPoP options cannot be used, or `undefined`. */
const dpopProblem = (dpop: ResolvedDpopOptions): string | undefined => {
  if (dpop.algorithms.length === 0) return "dpop.algorithms must name at least one algorithm"
  const unknown = dpop.algorithms.find((alg) => !(DPOP_ALGORITHMS as ReadonlyArray<string>).includes(alg))
  if (unknown !== undefined) return `dpop.algorithms: ${unknown} is not an asymmetric JWS algorithm this server verifies`
  if (!(dpop.proofMaxAge > 0) || !Number.isFinite(dpop.proofMaxAge)) return "dpop.proofMaxAge must be positive and finite"
  if (!(dpop.clockSkew >= 0) || !Number.isFinite(dpop.clockSkew)) return "dpop.clockSkew must be finite and not negative"
  if (!(dpop.nonceLifetime > 0) || !Number.isFinite(dpop.nonceLifetime)) return "dpop.nonceLifetime must be positive and finite"
  return undefined
}


/** Why the settings were refused (for example an issuer that is not an https URL). */
export class InvalidOAuthOptions extends Data.TaggedError("InvalidOAuthOptions")<{ readonly description: string }> {
  override get message(): string {
    return this.description
  }
}

/** Whether `value` is an absolute https URL (or http on a loopback host) without a fragment. */
export const isServerUrl = (value: string): boolean => {
  if (!URL.canParse(value)) return false
  const url = new URL(value)
  return url.hash === "" && (url.protocol === "https:" || (url.protocol === "http:" && isLoopbackHost(url.hostname)))
}

/** The settings as a layer; fails when the issuer or a resource is not a server URL. */
const layer = (options: OAuthOptions): Layer.Layer<OAuthConfig, InvalidOAuthOptions> =>
  Layer.effect(
    OAuthConfig,
    Effect.suspend(() => {
      const resolved = resolveOAuthOptions(options)
      const bad = [resolved.issuer, ...resolved.resources].find((url) => !isServerUrl(url))
      if (bad !== undefined) return Effect.fail(new InvalidOAuthOptions({ description: `not an https URL: ${bad}` }))
      const badBound = badLimit(resolved.clientMetadataLimits) ?? badLimit(resolved.authorizationRequestLimits)
      if (badBound !== undefined) {
        return Effect.fail(new InvalidOAuthOptions({ description: `${badBound} must be a whole number of at least 1` }))
      }
      const dpop = dpopProblem(resolved.dpop)
      return dpop === undefined ? Effect.succeed(resolved) : Effect.fail(new InvalidOAuthOptions({ description: dpop }))
    })
  )

/** `layer` with its options read from `Config`. */
const layerConfig = (
  config: Config.Config<OAuthOptions>
): Layer.Layer<OAuthConfig, InvalidOAuthOptions | ConfigError.ConfigError> => Layer.unwrapEffect(Effect.map(config, layer))

/**
 * The authorization server's resolved settings. `OAuthConfig.layer(options)`
 * validates and provides them; `OAuthConfig.layerConfig(config)` reads them
 * from `Config`.
 */
export class OAuthConfig extends Context.Tag("mcp-oauth-store/OAuthConfig")<OAuthConfig, ResolvedOAuthOptions>() {
  static readonly layer = layer
  static readonly layerConfig = layerConfig
}
