import { Clock, type Duration, Effect, type Scope } from "effect"
import { forkSweeper } from "../../internal/sweeper.ts"
import type { RedisClient } from "./client.ts"
import { int } from "./codec.ts"
import * as Lua from "./lua.ts"

/** Records handled per script call, so one sweep never blocks Redis for long. */
const BATCH = 500
/** At most this many batches per tick; the rest waits for the next tick. */
const MAX_BATCHES = 100

/** Sweep everything expired at `now`, batch by batch; the number of records handled. */
const sweepAt = (client: RedisClient, now: number): Effect.Effect<number, unknown> =>
  Effect.iterate({ batches: 0, removed: 0, last: BATCH }, {
    while: (state) => state.last === BATCH && state.batches < MAX_BATCHES,
    body: (state) =>
      Effect.map(client.run("RedisStore.sweep", Lua.sweep, [now, BATCH]), (reply) => {
        const last = int(reply)
        return { batches: state.batches + 1, removed: state.removed + last, last }
      })
  }).pipe(Effect.map((state) => state.removed))

/**
 * The sweep fiber (`forkSweeper`). Each tick reads the `Clock` and forks the
 * sweep for that instant, so the schedule never waits on the network: under
 * `TestClock`, a long `adjust` runs every tick's sweep with its own instant,
 * in order on the one connection. A failed sweep is logged; the next tick
 * tries again.
 */
export const forkRedisSweeper = (client: RedisClient, interval: Duration.Duration): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const tick = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      sweepAt(client, now).pipe(
        Effect.tap((removed) => removed > 0 ? Effect.logDebug(`swept ${removed} expired records`) : Effect.void),
        Effect.catchAllCause((cause) => Effect.logWarning("sweep failed; retrying at the next interval", cause)),
        Effect.forkIn(scope),
        Effect.as(0)
      ))
    yield* forkSweeper("RedisStore", interval, tick)
  })
