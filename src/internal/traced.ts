import { Effect, type Fiber } from "effect"
import { nowOf } from "./now.ts"

/** The tracer every runtime has unless the application installs one (its spans go nowhere). */
const defaultTracer = Effect.runSync(Effect.tracer)

/**
 * A span around a public operation, created only when the application has
 * installed a tracer: with Effect's default tracer the span is dropped anyway,
 * and building one costs ~20 µs per call on these machines (more than a memory
 * store's own work). No call-site stack trace is captured (an `Error` per
 * call, more than half the cost of the span).
 */
export const traced = (name: string, attributes?: Record<string, unknown>) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.tracerWith((tracer) =>
    tracer === defaultTracer
      ? self
      : Effect.withSpan(self, name, attributes === undefined ? { captureStackTrace: false } : { captureStackTrace: false, attributes })
  )

/** `plain` when no tracer is installed; otherwise what `spanned` builds (a span around it). */
export const whenTraced = <A, E, R>(plain: Effect.Effect<A, E, R>, spanned: () => Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.tracerWith((tracer) => tracer === defaultTracer ? plain : spanned())

/** Whether the application has installed a tracer on this fiber (checked inside a step that already has the fiber). */
export const isTracing = (fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean => fiber.currentTracer !== defaultTracer

/** The span `traced` makes, for a caller that has already checked `isTracing`. */
export const withOperationSpan = <A, E, R>(self: Effect.Effect<A, E, R>, name: string): Effect.Effect<A, E, R> =>
  Effect.withSpan(self, name, { captureStackTrace: false })

/**
 * `traced(name)` and the fiber's clock read in one step of the fiber, for the
 * stores' hot paths: `f` gets the time from the fiber's own `Clock` (so
 * `TestClock` drives it), and runs in a span `name` only when the application
 * has installed a tracer. `Effect.flatMap(Clock.currentTimeMillis, f)` inside
 * `traced` takes four steps for the same.
 */
export const tracedWithNow = <A, E, R>(name: string, f: (now: number) => Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withFiberRuntime((fiber) => {
    const now = nowOf(fiber)
    return isTracing(fiber) ? withOperationSpan(f(now), name) : f(now)
  })
