/**
 * What an instrumented store method records around the backend's call: one
 * call, its duration, its failure by `StoreError` reason (`Conflict` also as
 * a compare-and-set conflict), and whatever outcome the method's result
 * shows. Series are built once per method when the layer is built; an update
 * is a synchronous step on the series' own hook, with no fiber-label lookup.
 */
import { Cause, type Clock, Effect, type Metric, type MetricLabel, Option } from "effect"
import { casConflicts, series, storeErrors, storeOperationDuration, storeOperations } from "../../internal/metrics.ts"
import { StoreError } from "../../services/StoreError.ts"

/** The labels a pre-labelled series is updated with: none beyond its own. */
export const NO_LABELS: ReadonlyArray<MetricLabel.MetricLabel> = []

/** A counter series to add one to. */
export type Counter = Metric.Metric.Counter<number>

/** Wrap one method's effect; `onSuccess` sees its result (outcome counters). */
export type Measure = <A, E, R>(effect: Effect.Effect<A, E, R>, onSuccess?: (value: A) => void) => Effect.Effect<A, E, R>

/** The reason a failed store call is counted under: its `StoreError` reason, `Defect`, or none (interrupted). */
const failureReason = (cause: Cause.Cause<unknown>): string | undefined => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) return failure.value instanceof StoreError ? failure.value.reason : "Other"
  if (Cause.isDie(cause)) return "Defect"
  return undefined
}

/** The recorder of one backend: `measure("TokenStore.consumeCode")` for each method. */
export interface Recorder {
  readonly backend: string
  readonly measure: (operation: string) => Measure
}

/** Build the recorder of a backend over the `Clock` the durations are read from. */
export const makeRecorder = (clock: Clock.Clock, backend: string): Recorder => {
  const measure = (operation: string): Measure => {
    const labels = { operation, backend }
    const calls = series(storeOperations, labels)
    const duration = series(storeOperationDuration, labels)
    const conflicts = series(casConflicts, labels)
    const errors = new Map<string, Counter>()
    const recordFailure = (reason: string) => {
      let counter = errors.get(reason)
      if (counter === undefined) {
        counter = series(storeErrors, { ...labels, reason })
        errors.set(reason, counter)
      }
      counter.unsafeUpdate(1, NO_LABELS)
      if (reason === "Conflict") conflicts.unsafeUpdate(1, NO_LABELS)
    }
    const recordCall = (started: bigint) => {
      calls.unsafeUpdate(1, NO_LABELS)
      duration.unsafeUpdate(Number(clock.unsafeCurrentTimeNanos() - started) / 1e9, NO_LABELS)
    }
    // One `matchCauseEffect` around the call (no finalizer, no extra fiber step): a call that is
    // interrupted before it completes is not recorded. The handlers are methods, not arrow properties:
    // under tsx (`npm start`, the benches) an arrow in a property costs a `name` definition per call.
    return (effect, onSuccess) =>
      Effect.suspend(() => {
        const started = clock.unsafeCurrentTimeNanos()
        return Effect.matchCauseEffect(effect, {
          onSuccess(value) {
            recordCall(started)
            if (onSuccess !== undefined) onSuccess(value)
            return Effect.succeed(value)
          },
          onFailure(cause) {
            recordCall(started)
            const reason = failureReason(cause)
            if (reason !== undefined) recordFailure(reason)
            return Effect.failCause(cause)
          }
        })
      })
  }
  return { backend, measure }
}

/** Counters by a configured name (a rate-limit bucket, a replay scope), built on first use. */
export const countersBy = (make: (name: string) => Counter) => {
  const counters = new Map<string, Counter>()
  return (name: string): void => {
    let counter = counters.get(name)
    if (counter === undefined) {
      counter = make(name)
      counters.set(name, counter)
    }
    counter.unsafeUpdate(1, NO_LABELS)
  }
}
