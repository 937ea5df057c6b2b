/**
 * When the in-memory state goes to disk. One flush at a time: a flush takes
 * the whole state at one instant and writes it, so callers waiting behind a
 * flush that already covers their change return without writing again
 * (concurrent writes coalesce).
 */
import { Duration, Effect, Queue, type Scope } from "effect"
import type { MemoryState } from "../memory/state.ts"
import type { StoreError } from "../../services/StoreError.ts"
import { traced } from "../../internal/traced.ts"

/**
 * - `"every-write"`: a call that changed anything returns only once the file
 *   holding its change is durable (fsynced and renamed into place).
 * - `{ batched: { maxDelay } }`: calls return at once; changes are written
 *   together at most `maxDelay` after the first of them, and when the layer's
 *   scope closes. A crash loses at most the last `maxDelay` of changes.
 */
export type FlushPolicy = "every-write" | { readonly batched: { readonly maxDelay: Duration.DurationInput } }

/** What has been written so far. */
export interface FlushStats {
  /** Snapshots written since the layer was built. */
  readonly flushes: number
  /** Size in bytes of the last snapshot written (or loaded). */
  readonly bytes: number
  /** Whether changes are waiting to be written. */
  readonly pending: boolean
}

export interface Flusher {
  /** Run `effect`; if it changed the state, persist per the policy before returning its result. */
  readonly persisted: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E | StoreError>
  /**
   * Run `effect`; if it changed the state, start persisting it without
   * waiting, whatever the policy. For background work (the sweep): the
   * sweeper must not stall on disk I/O, and what it removes is expired anyway
   * (a lost sweep is redone after a restart).
   */
  readonly persistedInBackground: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
  /** Write everything not yet written, now. */
  readonly flush: Effect.Effect<void, StoreError>
  readonly stats: Effect.Effect<FlushStats>
}

export const makeFlusher = (
  state: Pick<MemoryState, "snapshot" | "changes">,
  write: (snapshot: ReturnType<MemoryState["snapshot"]>) => Effect.Effect<number, StoreError>,
  policy: FlushPolicy,
  initialBytes: number
): Effect.Effect<Flusher, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const semaphore = yield* Effect.makeSemaphore(1)
    /** The change count the file on disk reflects. */
    let durable = state.changes()
    let flushes = 0
    let bytes = initialBytes

    /** Make every change up to `target` durable (no-op when a flush already covered it). */
    const flushUpTo = (target: number): Effect.Effect<void, StoreError> =>
      semaphore.withPermits(1)(Effect.suspend(() => {
        if (durable >= target) return Effect.void
        // Counter and snapshot in one synchronous step: the snapshot holds exactly the changes counted.
        const version = state.changes()
        return write(state.snapshot()).pipe(
          Effect.tap((written) => {
            durable = version
            flushes++
            bytes = written
          }),
          Effect.uninterruptible,
          traced("FileStore.flush")
        )
      }))

    const flush = Effect.suspend(() => flushUpTo(state.changes()))

    let afterChange: Effect.Effect<void, StoreError> = flush
    if (policy !== "every-write") {
      const maxDelay = Duration.decode(policy.batched.maxDelay)
      const wake = yield* Queue.dropping<void>(1)
      let scheduled = false
      afterChange = Effect.suspend(() => {
        if (scheduled) return Effect.void
        scheduled = true
        return Queue.offer(wake, undefined)
      })
      yield* Queue.take(wake).pipe(
        Effect.zipRight(Effect.sleep(maxDelay)),
        Effect.zipRight(Effect.sync(() => {
          scheduled = false
        })),
        Effect.zipRight(flush),
        Effect.catchAll((error) =>
          Effect.logWarning("batched flush failed; retrying after the flush delay", error).pipe(
            Effect.zipRight(afterChange)
          )
        ),
        Effect.forever,
        Effect.annotateLogs("module", "FileStore"),
        Effect.interruptible,
        Effect.forkScoped
      )
    }

    const persisted = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E | StoreError> =>
      Effect.suspend(() => {
        const before = state.changes()
        return Effect.flatMap(Effect.exit(effect), (exit) => state.changes() === before ? exit : Effect.zipRight(afterChange, exit))
      })

    const inBackground: Effect.Effect<void> = policy === "every-write"
      ? flush.pipe(
        Effect.catchAll((error) => Effect.logWarning("flush after a sweep failed; the next write retries", error)),
        Effect.annotateLogs("module", "FileStore"),
        Effect.forkIn(scope),
        Effect.asVoid
      )
      : Effect.catchAll(afterChange, () => Effect.void)

    const persistedInBackground = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
      Effect.suspend(() => {
        const before = state.changes()
        return Effect.tap(effect, () => state.changes() === before ? Effect.void : inBackground)
      })

    const stats = Effect.sync((): FlushStats => ({ flushes, bytes, pending: state.changes() !== durable }))

    return { persisted, persistedInBackground, flush, stats }
  })
