/**
 * OTLP export settings from the standard OpenTelemetry variables
 * (`OTEL_EXPORTER_OTLP_ENDPOINT` and friends): which signals (traces,
 * metrics) go where, over which protocol, with which headers. Export is off
 * unless an endpoint is set. Header values are credentials: kept `Redacted`,
 * never logged.
 */
import { Config, ConfigError, Either, Option, Redacted } from "effect"

/** The OTLP/HTTP encodings the exporter speaks (gRPC is not supported). */
export const OTLP_PROTOCOLS = ["http/protobuf", "http/json"] as const
export type OtlpProtocol = typeof OTLP_PROTOCOLS[number]

/** Where and how one signal is exported. */
export interface OtlpSignalSettings {
  /** The full URL the signal is POSTed to (`.../v1/traces`, `.../v1/metrics`). */
  readonly url: string
  readonly protocol: OtlpProtocol
  /** Extra request headers (e.g. the collector's API key). */
  readonly headers: Redacted.Redacted<Readonly<Record<string, string>>>
  /** Milliseconds between exports (`OTEL_BSP_SCHEDULE_DELAY`, `OTEL_METRIC_EXPORT_INTERVAL`). */
  readonly intervalMillis: number
}

/** What the OTLP exporter sends. */
export interface TelemetrySettings {
  readonly traces: Option.Option<OtlpSignalSettings>
  readonly metrics: Option.Option<OtlpSignalSettings>
  /** `OTEL_SERVICE_NAME`; absent: `service.name` from `OTEL_RESOURCE_ATTRIBUTES`, else the package's name. */
  readonly serviceName: Option.Option<string>
  /** `OTEL_RESOURCE_ATTRIBUTES` (`key=value,...`), which the exporter reads itself. */
  readonly resourceAttributes: string
}

/** A refusal inside `Config.string(name).pipe(Config.mapOrFail(...))`: the variable's name is added to the path by the read itself. */
const invalid = (message: string) => ConfigError.InvalidData([], message)

/** `key=value` pairs separated by commas, values percent-decoded (the OpenTelemetry format). */
export const parseOtlpHeaders = (value: string): Either.Either<Record<string, string>, ConfigError.ConfigError> => {
  const headers: Record<string, string> = {}
  for (const entry of value.split(",").map((s) => s.trim()).filter((s) => s.length > 0)) {
    const at = entry.indexOf("=")
    const key = at > 0 ? entry.slice(0, at).trim().toLowerCase() : ""
    if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(key)) return Either.left(invalid("expected key=value pairs separated by commas"))
    let decoded: string
    try {
      decoded = decodeURIComponent(entry.slice(at + 1).trim())
    } catch {
      return Either.left(invalid(`the value of ${key} is not percent-encoded correctly`))
    }
    if (/[\r\n\0]/.test(decoded)) return Either.left(invalid(`the value of ${key} has a control character`))
    headers[key] = decoded
  }
  return Either.right(headers)
}

const httpUrl = (name: string) =>
  Config.string(name).pipe(
    Config.mapOrFail((value) => {
      try {
        const url = new URL(value.trim())
        if (url.protocol === "http:" || url.protocol === "https:") return Either.right(url.toString())
      } catch {
        // refused below
      }
      return Either.left(invalid("expected an http or https URL"))
    })
  )

const protocol = (name: string) =>
  Config.string(name).pipe(
    Config.mapOrFail((value) => {
      const found = OTLP_PROTOCOLS.find((p) => p === value.trim())
      if (found !== undefined) return Either.right(found)
      return Either.left(invalid(value.trim() === "grpc" ? "grpc is not supported: use http/protobuf or http/json" : "expected http/protobuf or http/json"))
    })
  )

const headers = (name: string) => Config.string(name).pipe(Config.mapOrFail(parseOtlpHeaders))

const millis = (name: string, fallback: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: "expected a positive number of milliseconds", validation: (n) => n > 0 }),
    Config.withDefault(fallback)
  )

/** `otlp` (default) or `none`, per signal (`OTEL_TRACES_EXPORTER`, `OTEL_METRICS_EXPORTER`). */
const exporterOn = (name: string) =>
  Config.literal("otlp", "none")(name).pipe(
    Config.withDefault("otlp" as const),
    Config.map((value) => value === "otlp")
  )

/** The base URL with the signal's path appended (OTLP/HTTP §"Endpoint URLs for OTLP/HTTP"). */
const signalPath = (base: string, path: string) => `${base.replace(/\/+$/, "")}${path}`

/** The shared `OTEL_EXPORTER_OTLP_*` settings, read once for both signals. */
const sharedConfig = Config.all({
  base: Config.option(httpUrl("OTEL_EXPORTER_OTLP_ENDPOINT")),
  protocol: Config.option(protocol("OTEL_EXPORTER_OTLP_PROTOCOL")),
  headers: Config.option(headers("OTEL_EXPORTER_OTLP_HEADERS"))
})
type Shared = Config.Config.Success<typeof sharedConfig>

/** One signal's own settings (`OTEL_EXPORTER_OTLP_TRACES_*`, ...), which win over the shared ones. */
const signalConfig = (signal: "TRACES" | "METRICS", interval: Config.Config<number>) =>
  Config.all({
    on: exporterOn(`OTEL_${signal}_EXPORTER`),
    url: Config.option(httpUrl(`OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`)),
    protocol: Config.option(protocol(`OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`)),
    headers: Config.option(headers(`OTEL_EXPORTER_OTLP_${signal}_HEADERS`)),
    intervalMillis: interval
  })
type Own = Config.Config.Success<ReturnType<typeof signalConfig>>

/** Where a signal goes: its own endpoint as given, else the shared base with the signal's path appended; off without either. */
const resolveSignal = (own: Own, shared: Shared, path: string): Option.Option<OtlpSignalSettings> => {
  const url = Option.orElse(own.url, () => Option.map(shared.base, (base) => signalPath(base, path)))
  if (!own.on || Option.isNone(url)) return Option.none()
  return Option.some({
    url: url.value,
    protocol: Option.getOrElse(Option.orElse(own.protocol, () => shared.protocol), (): OtlpProtocol => "http/protobuf"),
    headers: Redacted.make(Option.getOrElse(Option.orElse(own.headers, () => shared.headers), () => ({}))),
    intervalMillis: own.intervalMillis
  })
}

/** The OTLP export settings (`OTEL_SDK_DISABLED=true` turns everything off). */
export const telemetryConfig: Config.Config<TelemetrySettings> = Config.all({
  disabled: Config.boolean("OTEL_SDK_DISABLED").pipe(Config.withDefault(false)),
  shared: sharedConfig,
  traces: signalConfig("TRACES", millis("OTEL_BSP_SCHEDULE_DELAY", 5_000)),
  metrics: signalConfig("METRICS", millis("OTEL_METRIC_EXPORT_INTERVAL", 60_000)),
  serviceName: Config.option(Config.nonEmptyString("OTEL_SERVICE_NAME")),
  resourceAttributes: Config.string("OTEL_RESOURCE_ATTRIBUTES").pipe(Config.withDefault(""))
}).pipe(
  Config.map(({ disabled, metrics, resourceAttributes, serviceName, shared, traces }) => ({
    traces: disabled ? Option.none() : resolveSignal(traces, shared, "/v1/traces"),
    metrics: disabled ? Option.none() : resolveSignal(metrics, shared, "/v1/metrics"),
    serviceName,
    resourceAttributes
  }))
)
