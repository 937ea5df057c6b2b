/**
 * SIGHUP: tell every MCP client listening for changes, on every instance that
 * shares the store, that the tool list changed (for example after a new
 * version with other tools was deployed behind the load balancer). The
 * signal is handled for as long as the server runs.
 */
import { Effect, Layer, Runtime } from "effect"
import { McpEventBus } from "../services/McpEventBus.ts"

/** Publish `ToolsListChanged` on the event bus at each SIGHUP, logged. */
export const announceToolsChangedOnHangup: Layer.Layer<never, never, McpEventBus> = Layer.scopedDiscard(
  Effect.gen(function*() {
    const bus = yield* McpEventBus
    const runtime = yield* Effect.runtime<never>()
    const announce = bus.publish({ _tag: "ToolsListChanged" }).pipe(
      Effect.zipRight(Effect.logInfo("SIGHUP: announced a tool list change to listening clients")),
      Effect.catchAll((error) => Effect.logWarning("SIGHUP: the tool list change could not be announced").pipe(Effect.annotateLogs("reason", error.reason)))
    )
    const onHangup = () => void Runtime.runFork(runtime)(announce)
    yield* Effect.acquireRelease(
      Effect.sync(() => process.on("SIGHUP", onHangup)),
      () => Effect.sync(() => void process.off("SIGHUP", onHangup))
    )
  })
)
