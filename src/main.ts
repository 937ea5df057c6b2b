/**
 * `npm start`: read the configuration, open the chosen store, and serve the
 * OAuth authorization server and the MCP endpoint until SIGINT/SIGTERM
 * (then: stop accepting, finish in-flight requests, close the store).
 * Logs are JSON lines on stdout; a startup failure is one line naming what is wrong.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Config, Context, Data, Effect, Layer, Logger, LogLevel, Option } from "effect"
import * as NodeMcpServer from "./http/node.ts"
import { describeConfigError, loadServerSettings, type ServerSettings } from "./server/config.ts"
import { makeLogOutput } from "./server/logger.ts"
import { serviceLayer } from "./server/services.ts"
import { describeStartupFailure } from "./server/startup.ts"
import { settingsWarnings } from "./server/startupChecks.ts"
import { telemetryLayer } from "./server/telemetry.ts"

/** The metrics port (`METRICS=<port>`) could not be listened on. */
class MetricsListenError extends Data.TaggedError("MetricsListenError")<{ readonly port: number; readonly cause: unknown }> {}

/** `/metrics` on its own port when `METRICS` names one. */
const metricsPort = (settings: ServerSettings) =>
  settings.metrics._tag === "Port"
    ? NodeMcpServer.metricsLayer({ port: settings.metrics.port, host: settings.host }).pipe(
      Layer.mapError((cause) => new MetricsListenError({ port: settings.metrics._tag === "Port" ? settings.metrics.port : 0, cause }))
    )
    : Layer.empty

const output = makeLogOutput()

const main = Effect.gen(function*() {
  const settings = yield* loadServerSettings
  const level = yield* Config.logLevel("LOG_LEVEL").pipe(Config.withDefault(LogLevel.Info), Effect.mapError(describeConfigError))
  yield* settingsWarnings(settings).pipe(Logger.withMinimumLogLevel(level))
  const server = NodeMcpServer.layer({ port: settings.port, host: settings.host }).pipe(
    Layer.tap((context) =>
      Effect.logInfo("listening").pipe(
        Effect.annotateLogs({ address: Context.get(context, NodeMcpServer.ListeningAddress), url: settings.publicUrl, store: settings.store })
      )),
    Layer.provide(serviceLayer(settings, output.requestLog(level, settings.logRequests))),
    // Built once the server listens, so released first: the line comes as shutdown begins.
    (server) => Layer.provideMerge(Layer.scopedDiscard(Effect.addFinalizer(() => Effect.logInfo("shutting down: finishing in-flight requests"))), server)
  )
  // The exporters are built first and released last: every span and the last metrics go out before exit.
  const app = Layer.merge(server, metricsPort(settings)).pipe(Layer.provide(telemetryLayer(settings.telemetry)))
  yield* Layer.launch(app).pipe(
    Logger.withMinimumLogLevel(level),
    Effect.onInterrupt(() => Effect.logInfo("stopped")),
    Effect.catchAllCause((cause) => {
      if (Cause.isInterruptedOnly(cause)) return Effect.interrupt
      const failure = Option.getOrElse(Cause.failureOption(cause), () => Cause.squash(cause))
      return Effect.fail(
        failure instanceof MetricsListenError
          ? `METRICS: ${describeStartupFailure(failure.cause, { host: settings.host, port: failure.port })}`
          : describeStartupFailure(failure, settings)
      )
    })
  )
}).pipe(
  Effect.tapError((line) => Effect.logError(line)),
  Effect.provide(Logger.replace(Logger.defaultLogger, output.logger))
)

NodeRuntime.runMain(main, { disableErrorReporting: true, disablePrettyLogger: true })
