import { Duration, Effect, Schedule, type Scope } from "effect"

/**
 * Fork a loop in the current scope that runs `sweep` now and then every
 * `interval` (by Effect's `Clock`, so `TestClock` drives it). A failing sweep
 * is logged and retried at the next interval; the loop ends with the scope.
 * An infinite interval forks nothing: the store is never swept by this build
 * (a tool that opens a store beside its servers leaves that to them).
 */
export const forkSweeper = <E>(
  module: string,
  interval: Duration.Duration,
  sweep: Effect.Effect<number, E>
): Effect.Effect<void, never, Scope.Scope> =>
  !Duration.isFinite(interval) ? Effect.void : sweep.pipe(
    Effect.tap((removed) => removed > 0 ? Effect.logDebug(`swept ${removed} expired records`) : Effect.void),
    Effect.catchAllCause((cause) => Effect.logWarning("sweep failed; retrying at the next interval", cause)),
    Effect.repeat(Schedule.spaced(interval)),
    Effect.annotateLogs("module", module),
    Effect.interruptible,
    Effect.forkScoped,
    Effect.asVoid
  )
