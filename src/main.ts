/**
 * `npm start`: read the configuration, open the chosen store, and serve the
 * OAuth authorization server and the MCP endpoint until SIGINT/SIGTERM
 * (then: stop accepting, finish in-flight requests, close the store).
 * Logs are JSON lines on stdout; a startup failure is one line naming what is wrong.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Config, Context, Effect, Layer, Logger, LogLevel, Option } from "effect"
import * as NodeMcpServer from "./http/node.ts"
import { describeConfigError, loadServerSettings } from "./server/config.ts"
import { makeLogOutput } from "./server/logger.ts"
import { serviceLayer } from "./server/services.ts"
import { describeStartupFailure } from "./server/startup.ts"

const output = makeLogOutput()

const main = Effect.gen(function*() {
  const settings = yield* loadServerSettings
  const level = yield* Config.logLevel("LOG_LEVEL").pipe(Config.withDefault(LogLevel.Info), Effect.mapError(describeConfigError))
  const app = NodeMcpServer.layer({ port: settings.port, host: settings.host }).pipe(
    Layer.tap((context) =>
      Effect.logInfo("listening").pipe(
        Effect.annotateLogs({ address: Context.get(context, NodeMcpServer.ListeningAddress), url: settings.publicUrl, store: settings.store })
      )),
    Layer.provide(serviceLayer(settings, output.requestLog(level, settings.logRequests))),
    // Built once the server listens, so released first: the line comes as shutdown begins.
    (server) => Layer.provideMerge(Layer.scopedDiscard(Effect.addFinalizer(() => Effect.logInfo("shutting down: finishing in-flight requests"))), server)
  )
  yield* Layer.launch(app).pipe(
    Logger.withMinimumLogLevel(level),
    Effect.onInterrupt(() => Effect.logInfo("stopped")),
    Effect.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause) ? Effect.interrupt : Effect.fail(
        describeStartupFailure(Option.getOrElse(Cause.failureOption(cause), () => Cause.squash(cause)), settings)
      ))
  )
}).pipe(
  Effect.tapError((line) => Effect.logError(line)),
  Effect.provide(Logger.replace(Logger.defaultLogger, output.logger))
)

NodeRuntime.runMain(main, { disableErrorReporting: true, disablePrettyLogger: true })
