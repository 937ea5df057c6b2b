import { Clock, Context, Effect, type Fiber } from "effect"

/** The time by the fiber's own `Clock` (so `TestClock` drives it), read inside a step that already has the fiber. */
export const nowOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>): number =>
  Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()

/**
 * `Clock.currentTimeMillis` and what follows, in one step of the fiber: the
 * fiber's own `Clock` (so `TestClock` drives it as ever), read without the two
 * extra runtime steps `Effect.flatMap(Clock.currentTimeMillis, f)` takes. For
 * the stores' hot paths, where those steps cost about as much as the work.
 */
export const withNow = <A, E, R>(f: (now: number) => Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withFiberRuntime((fiber) => f(nowOf(fiber)))
