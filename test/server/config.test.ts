import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Option, Redacted } from "effect"
import { DEFAULT_LIMITS, type RateLimit } from "../../src/http/limits.ts"
import { DEFAULT_AUTHORIZATION_REQUEST_LIMITS, DEFAULT_CLIENT_METADATA_LIMITS } from "../../src/oauth/config.ts"
import { loadServerSettings } from "../../src/server/config.ts"

/** The settings read from exactly these variables. */
const load = (env: Record<string, string>) =>
  loadServerSettings.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))

/** The one-line failure for these variables. */
const failure = (env: Record<string, string>) => Effect.flip(load(env))

describe("server settings from the environment", () => {
  it.effect("an empty environment gives the npm start defaults", () =>
    Effect.gen(function*() {
      const settings = yield* load({})
      expect(settings).toMatchObject({
        port: 8787,
        host: "127.0.0.1",
        publicUrl: "http://127.0.0.1:8787",
        store: "sqlite",
        dataDir: "./data",
        apiKeys: [],
        accessTokenFormat: "jwt"
      })
      expect(Option.isNone(settings.devAutoApprove)).toBe(true)
      expect(Option.isNone(settings.upstream)).toBe(true)
    }))

  it.effect("metadata documents are on by default; CLIENT_METADATA_DOCUMENTS=off turns them off; the loopback switch is loopback-only", () =>
    Effect.gen(function*() {
      const defaults = yield* load({})
      expect(defaults.clientMetadataDocuments).toBe(true)
      expect(defaults.clientMetadataAllowLoopback).toBe(false)
      expect((yield* load({ CLIENT_METADATA_DOCUMENTS: "off" })).clientMetadataDocuments).toBe(false)
      expect(yield* failure({ CLIENT_METADATA_DOCUMENTS: "maybe" })).toContain("CLIENT_METADATA_DOCUMENTS")
      expect((yield* load({ CLIENT_METADATA_ALLOW_LOOPBACK: "true" })).clientMetadataAllowLoopback).toBe(true)
      const refused = yield* failure({ HOST: "0.0.0.0", PUBLIC_URL: "https://auth.example", CLIENT_METADATA_ALLOW_LOOPBACK: "true" })
      expect(refused).toContain("CLIENT_METADATA_ALLOW_LOOPBACK")
      expect(refused).toContain("non-loopback")
    }))

  it.effect("SCOPE_DESCRIPTIONS: a JSON object laid over the built-in descriptions; anything else names the variable", () =>
    Effect.gen(function*() {
      const defaults = (yield* load({})).scopeDescriptions
      expect(Object.keys(defaults)).toEqual(["mcp:tools", "mcp:upstream"])
      const custom = (yield* load({ SCOPE_DESCRIPTIONS: `{"mcp:tools":"Use the tools","files:read":"Read your files"}` })).scopeDescriptions
      expect(custom).toEqual({ "mcp:tools": "Use the tools", "mcp:upstream": defaults["mcp:upstream"], "files:read": "Read your files" })
      for (const bad of ["not json", "[1]", `{"a b":"x"}`, `{"read":3}`, `{"read":"${"x".repeat(501)}"}`]) {
        const message = yield* failure({ SCOPE_DESCRIPTIONS: bad })
        expect(message).toContain("SCOPE_DESCRIPTIONS")
        expect(message).not.toContain("x".repeat(100))
      }
    }))

  it.effect("API_KEYS gives users with redacted keys", () =>
    Effect.gen(function*() {
      const settings = yield* load({ API_KEYS: "alice=alice-key-0123456789, bob=bob-key-0123456789abc" })
      expect(settings.apiKeys.map((u) => u.user)).toEqual(["alice", "bob"])
      expect(settings.apiKeys.map((u) => Redacted.value(u.apiKey))).toEqual(["alice-key-0123456789", "bob-key-0123456789abc"])
      expect(String(settings.apiKeys[0]?.apiKey)).not.toContain("alice-key")
    }))

  it.effect("DEV_AUTO_APPROVE is accepted on a loopback HOST", () =>
    Effect.gen(function*() {
      for (const host of ["127.0.0.1", "localhost", "::1", "127.0.0.2"]) {
        const settings = yield* load({ HOST: host, DEV_AUTO_APPROVE: "dev-user" })
        expect(settings.devAutoApprove).toEqual(Option.some("dev-user"))
      }
    }))

  it.effect("DEV_AUTO_APPROVE is refused on a non-loopback HOST, even with a PUBLIC_URL", () =>
    Effect.gen(function*() {
      for (const host of ["0.0.0.0", "192.168.1.10", "::", "example.com"]) {
        const message = yield* failure({ HOST: host, PUBLIC_URL: "https://auth.example", DEV_AUTO_APPROVE: "dev-user" })
        expect(message).toContain("DEV_AUTO_APPROVE")
        expect(message).toContain("non-loopback")
        expect(message).not.toContain("\n")
      }
      const withoutDev = yield* load({ HOST: "0.0.0.0", PUBLIC_URL: "https://auth.example" })
      expect(withoutDev.publicUrl).toBe("https://auth.example")
    }))

  it.effect("each unusable value fails with one line naming its variable", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [Record<string, string>, string]> = [
        [{ PORT: "abc" }, "PORT"],
        [{ PORT: "70000" }, "PORT"],
        [{ STORE: "nope" }, "STORE"],
        [{ API_KEYS: "no-equals-sign" }, "API_KEYS"],
        [{ API_KEYS: "alice=short" }, "API_KEYS"],
        [{ API_KEYS: "alice=alice-key-0123456789,alice=other-key-0123456789" }, "API_KEYS"],
        [{ API_KEYS: "bad user=alice-key-0123456789" }, "API_KEYS"],
        [{ DEV_AUTO_APPROVE: "not a user!" }, "DEV_AUTO_APPROVE"],
        [{ UPSTREAM_ISSUER: "https://idp.example" }, "UPSTREAM_CLIENT_ID"],
        [{ UPSTREAM_ISSUER: "http://idp.example", UPSTREAM_CLIENT_ID: "c" }, "UPSTREAM_ISSUER"],
        [{ PUBLIC_URL: "ftp://auth.example" }, "PUBLIC_URL"],
        [{ HOST: "0.0.0.0" }, "PUBLIC_URL"],
        [{ ACCESS_TOKEN_TTL: "0" }, "ACCESS_TOKEN_TTL"],
        [{ MAX_BODY_BYTES: "-1" }, "MAX_BODY_BYTES"],
        [{ UPSTREAM_ISSUER: "https://idp.example", UPSTREAM_CLIENT_ID: "c", UPSTREAM_REFRESH_SKEW_SECONDS: "-5" }, "UPSTREAM_REFRESH_SKEW_SECONDS"],
        [{ ACCESS_TOKEN_FORMAT: "paseto" }, "ACCESS_TOKEN_FORMAT"],
        [{ SCOPES: "a \"b\"" }, "SCOPES"]
      ]
      for (const [env, name] of cases) {
        const message = yield* failure(env)
        expect(message, JSON.stringify(env)).toContain(name)
        expect(message).not.toContain("\n")
      }
    }))

  it.effect("a malformed API_KEYS value is not echoed in the error", () =>
    Effect.gen(function*() {
      const message = yield* failure({ API_KEYS: "alice=secretish" })
      expect(message).not.toContain("secretish")
    }))

  it.effect("the limits: defaults equal the library's, each variable read, `off` turns a rate limit off, a bad value names its variable", () =>
    Effect.gen(function*() {
      const defaults = yield* load({})
      expect(Option.isNone(defaults.trustProxy)).toBe(true)
      const rate = (r: RateLimit | false | undefined) => r === false || r === undefined ? r : { limit: r.limit, millis: Duration.toMillis(Duration.decode(r.window)) }
      expect(rate(defaults.limits.register?.perAddress)).toEqual(rate(DEFAULT_LIMITS.registerPerAddress))
      expect(rate(defaults.limits.authorize?.perAddress)).toEqual(rate(DEFAULT_LIMITS.authorizePerAddress))
      expect(rate(defaults.limits.signIn?.failuresPerAddress)).toEqual(rate(DEFAULT_LIMITS.signInFailuresPerAddress))
      expect(rate(defaults.limits.signIn?.failuresPerUser)).toEqual(rate(DEFAULT_LIMITS.signInFailuresPerUser))
      expect(defaults.limits).toMatchObject({
        register: { maxDocumentBytes: DEFAULT_LIMITS.maxDocumentBytes, ...DEFAULT_CLIENT_METADATA_LIMITS },
        authorize: { pending: DEFAULT_LIMITS.pendingAuthorizations, ...DEFAULT_AUTHORIZATION_REQUEST_LIMITS },
        signIn: { failuresPerAuthorization: DEFAULT_LIMITS.signInFailuresPerAuthorization }
      })

      const set = yield* load({
        TRUST_PROXY: "10.0.0.0/8,loopback",
        REGISTER_RATE_LIMIT: "5/30m",
        REGISTER_MAX_BYTES: "8192",
        REGISTER_MAX_REDIRECT_URIS: "3",
        REGISTER_MAX_URI_LENGTH: "512",
        REGISTER_MAX_TEXT_LENGTH: "64",
        REGISTER_MAX_SCOPE_LENGTH: "100",
        REGISTER_MAX_CONTACTS: "2",
        AUTHORIZE_RATE_LIMIT: "off",
        AUTHORIZE_PENDING_LIMIT: "2000",
        AUTHORIZE_MAX_STATE_LENGTH: "256",
        AUTHORIZE_MAX_PARAMETER_LENGTH: "1024",
        SIGN_IN_FAILURES_PER_ADDRESS: "3/1h",
        SIGN_IN_FAILURES_PER_USER: "off",
        SIGN_IN_FAILURES_PER_AUTHORIZATION: "3"
      })
      expect(set.trustProxy).toEqual(Option.some({ proxies: ["10.0.0.0/8", "loopback"] }))
      expect(set.limits).toEqual({
        register: {
          perAddress: { limit: 5, window: 30 * 60_000 },
          maxDocumentBytes: 8192,
          maxRedirectUris: 3,
          maxUriLength: 512,
          maxTextLength: 64,
          maxScopeLength: 100,
          maxContacts: 2
        },
        authorize: { perAddress: false, pending: 2000, maxStateLength: 256, maxParameterLength: 1024 },
        signIn: { failuresPerAddress: { limit: 3, window: 3_600_000 }, failuresPerUser: false, failuresPerAuthorization: 3 }
      })
      expect((yield* load({ TRUST_PROXY: "2" })).trustProxy).toEqual(Option.some({ hops: 2 }))
      expect((yield* load({ AUTHORIZE_PENDING_LIMIT: "off" })).limits.authorize?.pending).toBe(false)
      expect((yield* load({ REGISTER_RATE_LIMIT: "20/d" })).limits.register?.perAddress).toEqual({ limit: 20, window: 86_400_000 })

      const cases: ReadonlyArray<readonly [Record<string, string>, string]> = [
        [{ TRUST_PROXY: "proxy.example" }, "TRUST_PROXY"],
        [{ TRUST_PROXY: "99" }, "TRUST_PROXY"],
        [{ REGISTER_RATE_LIMIT: "fast" }, "REGISTER_RATE_LIMIT"],
        [{ REGISTER_RATE_LIMIT: "0/1h" }, "REGISTER_RATE_LIMIT"],
        [{ AUTHORIZE_RATE_LIMIT: "10/400d" }, "AUTHORIZE_RATE_LIMIT"],
        [{ AUTHORIZE_PENDING_LIMIT: "0" }, "AUTHORIZE_PENDING_LIMIT"],
        [{ SIGN_IN_FAILURES_PER_USER: "10 per hour" }, "SIGN_IN_FAILURES_PER_USER"],
        [{ SIGN_IN_FAILURES_PER_AUTHORIZATION: "0" }, "SIGN_IN_FAILURES_PER_AUTHORIZATION"],
        [{ REGISTER_MAX_BYTES: "-1" }, "REGISTER_MAX_BYTES"],
        [{ AUTHORIZE_MAX_STATE_LENGTH: "x" }, "AUTHORIZE_MAX_STATE_LENGTH"]
      ]
      for (const [env, name] of cases) {
        const message = yield* failure(env)
        expect(message, JSON.stringify(env)).toContain(name)
        expect(message).not.toContain("\n")
      }
    }))

  it.effect("METRICS: off by default; on (the main server) or a port of its own; anything else refused", () =>
    Effect.gen(function*() {
      expect((yield* load({})).metrics).toEqual({ _tag: "Off" })
      expect((yield* load({ METRICS: "off" })).metrics).toEqual({ _tag: "Off" })
      expect((yield* load({ METRICS: "on" })).metrics).toEqual({ _tag: "Main" })
      expect((yield* load({ METRICS: "9464" })).metrics).toEqual({ _tag: "Port", port: 9464 })
      for (const value of ["yes", "0", "70000", "-1", "9464x"]) {
        const message = yield* failure({ METRICS: value })
        expect(message, value).toContain("METRICS")
        expect(message).toContain("expected off, on or a port number")
      }
      expect(yield* failure({ METRICS: "8787" })).toMatch(/METRICS.*must differ from PORT/)
    }))

  it.effect("OTLP export: off unless an endpoint is set; the standard variables, each signal's own first", () =>
    Effect.gen(function*() {
      const none = (yield* load({})).telemetry
      expect(Option.isNone(none.traces) && Option.isNone(none.metrics)).toBe(true)

      const base = (yield* load({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector.internal:4318/",
        OTEL_EXPORTER_OTLP_HEADERS: "api-key=s%3Dcret,X-Tenant=a"
      })).telemetry
      expect(Option.map(base.traces, (t) => [t.url, t.protocol, t.intervalMillis])).toEqual(
        Option.some(["http://collector.internal:4318/v1/traces", "http/protobuf", 5000])
      )
      expect(Option.map(base.metrics, (m) => [m.url, m.intervalMillis, Redacted.value(m.headers)])).toEqual(
        Option.some(["http://collector.internal:4318/v1/metrics", 60000, { "api-key": "s=cret", "x-tenant": "a" }])
      )

      const own = (yield* load({
        OTEL_EXPORTER_OTLP_ENDPOINT: "https://collector.example",
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "https://metrics.example/ingest",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: "http/protobuf",
        OTEL_TRACES_EXPORTER: "none",
        OTEL_METRIC_EXPORT_INTERVAL: "15000"
      })).telemetry
      expect(Option.isNone(own.traces)).toBe(true)
      expect(Option.map(own.metrics, (m) => [m.url, m.protocol, m.intervalMillis])).toEqual(
        Option.some(["https://metrics.example/ingest", "http/protobuf", 15000])
      )

      const disabled = (yield* load({ OTEL_EXPORTER_OTLP_ENDPOINT: "https://collector.example", OTEL_SDK_DISABLED: "true" })).telemetry
      expect(Option.isNone(disabled.traces) && Option.isNone(disabled.metrics)).toBe(true)

      const cases: ReadonlyArray<readonly [Record<string, string>, string]> = [
        [{ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" }, "OTEL_EXPORTER_OTLP_ENDPOINT"],
        [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "ftp://x" }, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"],
        [{ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }, "OTEL_EXPORTER_OTLP_PROTOCOL"],
        [{ OTEL_EXPORTER_OTLP_HEADERS: "no-equals" }, "OTEL_EXPORTER_OTLP_HEADERS"],
        [{ OTEL_EXPORTER_OTLP_METRICS_HEADERS: "k=%E0%A4%A" }, "OTEL_EXPORTER_OTLP_METRICS_HEADERS"],
        [{ OTEL_TRACES_EXPORTER: "zipkin" }, "OTEL_TRACES_EXPORTER"],
        [{ OTEL_METRIC_EXPORT_INTERVAL: "0" }, "OTEL_METRIC_EXPORT_INTERVAL"]
      ]
      for (const [env, name] of cases) {
        const message = yield* failure(env)
        expect(message, JSON.stringify(env)).toContain(name)
        expect(message).not.toContain("\n")
      }
      // A header value (a credential) is never echoed.
      expect(yield* failure({ OTEL_EXPORTER_OTLP_HEADERS: "api-key=%zzsecret-value" })).not.toContain("secret-value")
    }))
})
