/**
 * OTLP export of the server's traces and metrics with `@effect/opentelemetry`
 * (its `OtlpTracer` and `OtlpMetrics`: OTLP/HTTP over `@effect/platform`'s
 * `HttpClient`, no OpenTelemetry SDK). Installing the tracer makes the spans
 * real (`traced()`, the request spans); the metrics exporter reads the same
 * registry as `/metrics`. The package is an optional peer: it is loaded only
 * when an endpoint is configured, and its absence then stops startup with
 * one line.
 */
import { FetchHttpClient } from "@effect/platform"
import { Data, Duration, Effect, Layer, Option, Redacted } from "effect"
import packageJson from "../../package.json" with { type: "json" }
import type { OtlpSignalSettings, TelemetrySettings } from "./telemetryConfig.ts"

/** OTLP export is configured but `@effect/opentelemetry` cannot be loaded. */
export class TelemetryUnavailable extends Data.TaggedError("TelemetryUnavailable")<{ readonly message: string }> {}

/** How long shutdown waits for the last export of each signal. */
const SHUTDOWN_TIMEOUT = Duration.seconds(3)

const load = Effect.tryPromise({
  try: () =>
    Promise.all([
      import("@effect/opentelemetry/OtlpTracer"),
      import("@effect/opentelemetry/OtlpMetrics"),
      import("@effect/opentelemetry/OtlpSerialization")
    ]),
  catch: () =>
    new TelemetryUnavailable({
      message: "OTLP export is configured (OTEL_EXPORTER_OTLP_*), but @effect/opentelemetry cannot be loaded (npm install @effect/opentelemetry@^0.64.1)"
    })
})

/** The resource every signal carries: the service name (unless `OTEL_RESOURCE_ATTRIBUTES` names it) and version. */
const resourceOf = (settings: TelemetrySettings) => {
  const attributes = settings.resourceAttributes
  const named = /(^|,)\s*service\.name\s*=/.test(attributes)
  const versioned = /(^|,)\s*service\.version\s*=/.test(attributes)
  return {
    ...(Option.isSome(settings.serviceName)
      ? { serviceName: settings.serviceName.value }
      : named
      ? {}
      : { serviceName: packageJson.name }),
    ...(versioned ? {} : { serviceVersion: packageJson.version })
  }
}

/** Exporters for the configured signals (none: `Layer.empty`), over `fetch`. */
export const telemetryLayer = (settings: TelemetrySettings): Layer.Layer<never, TelemetryUnavailable> => {
  if (Option.isNone(settings.traces) && Option.isNone(settings.metrics)) return Layer.empty
  return Layer.unwrapEffect(Effect.map(load, ([OtlpTracer, OtlpMetrics, OtlpSerialization]) => {
    const resource = resourceOf(settings)
    const serialization = (signal: OtlpSignalSettings) =>
      signal.protocol === "http/json" ? OtlpSerialization.layerJson : OtlpSerialization.layerProtobuf
    const common = (signal: OtlpSignalSettings) => ({
      url: signal.url,
      resource,
      headers: Redacted.value(signal.headers),
      exportInterval: Duration.millis(signal.intervalMillis),
      shutdownTimeout: SHUTDOWN_TIMEOUT
    })
    const traces = Option.match(settings.traces, {
      onNone: () => Layer.empty,
      onSome: (signal) => OtlpTracer.layer(common(signal)).pipe(Layer.provide(serialization(signal)))
    })
    const metrics = Option.match(settings.metrics, {
      onNone: () => Layer.empty,
      onSome: (signal) => OtlpMetrics.layer(common(signal)).pipe(Layer.provide(serialization(signal)))
    })
    const signals = [Option.isSome(settings.traces) ? "traces" : undefined, Option.isSome(settings.metrics) ? "metrics" : undefined]
      .filter((s) => s !== undefined)
    const announce = Layer.effectDiscard(Effect.logInfo("exporting over OTLP").pipe(
      Effect.annotateLogs({
        signals: signals.join(", "),
        // Where to, without a path's or query's credentials: the origins only.
        endpoints: [...new Set([settings.traces, settings.metrics].flatMap((s) => Option.isSome(s) ? [new URL(s.value.url).origin] : []))].join(", ")
      })
    ))
    return Layer.mergeAll(traces, metrics, announce).pipe(Layer.provide(FetchHttpClient.layer))
  }))
}
