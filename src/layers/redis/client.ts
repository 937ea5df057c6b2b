import { Duration, Effect, Redacted, Runtime, type Scope } from "effect"
import { Redis, type RedisOptions as IoRedisOptions } from "ioredis"
import { StoreError, type StoreErrorReason } from "../../services/StoreError.ts"
import type { Script } from "./lua.ts"

/** Where the Redis server is and how long to wait for it. */
export interface RedisConnectionOptions {
  /** `redis://` or `rediss://` URL (`REDIS_URL`). Explicit options below override its parts. */
  readonly url?: string | Redacted.Redacted<string> | undefined
  /** Default `127.0.0.1` (when no `url`). */
  readonly host?: string | undefined
  /** Default 6379 (when no `url`). */
  readonly port?: number | undefined
  readonly username?: string | undefined
  readonly password?: string | Redacted.Redacted<string> | undefined
  readonly db?: number | undefined
  /** Connect over TLS (also implied by a `rediss://` URL). */
  readonly tls?: boolean | undefined
  /** Put before every key (seed 002's `keyPrefix`); default `mcp:`. */
  readonly keyPrefix?: string | undefined
  /**
   * Every command fails with `StoreError` `Unavailable` when Redis has not
   * answered within this (default 2 s). A timed-out command's outcome is
   * unknown: Redis may still apply it when it answers again (a code consumed
   * then, a rotation done then), as with any remote store.
   */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** How long the layer waits for the first connection (default 5 s). */
  readonly connectTimeout?: Duration.DurationInput | undefined
}

/** One Redis connection with the layer's prefix, and the only way the stores talk to it. */
export interface RedisClient {
  readonly redis: Redis
  readonly prefix: string
  /**
   * Run one ioredis call; any failure becomes a `StoreError` of `method`. With
   * `reply`, its answer is read in the reply's callback, in the same runtime
   * step as the call's resumption (see `Reply`).
   */
  readonly call: {
    <A>(method: string, f: (redis: Redis) => Promise<A>): Effect.Effect<A, StoreError>
    <A, B>(method: string, f: (redis: Redis) => Promise<A>, reply: Reply<A, B>): Effect.Effect<B, StoreError>
  }
  /** Run a script with `ARGV[1]` = the prefix, then `args`; `reply` as for `call`. */
  readonly run: {
    (method: string, script: Script, args: ReadonlyArray<string | number>): Effect.Effect<unknown, StoreError>
    <B>(method: string, script: Script, args: ReadonlyArray<string | number>, reply: Reply<unknown, B>): Effect.Effect<B, StoreError>
  }
}

/**
 * How a store reads a command's answer: synchronously, to what the operation
 * returns. An `Either` (a record decoded, or a typed `StoreError` for a reply
 * that is not what the layer wrote) resumes the waiting fiber as it is; any
 * other Effect (a follow-up command) runs next. Reading the reply here rather
 * than in an `Effect.flatMap` after the call saves the runtime steps of the
 * continuation on every command.
 */
export type Reply<A, B> = (value: A) => Effect.Effect<B, StoreError>

const millis = (input: Duration.DurationInput | undefined, fallback: Duration.DurationInput): number =>
  Duration.toMillis(Duration.decode(input ?? fallback))

const reveal = (value: string | Redacted.Redacted<string>): string => Redacted.isRedacted(value) ? Redacted.value(value) : value

/**
 * Why a call failed. Redis rejecting stored data (a key of the wrong type, a
 * script that cannot read a record) is `Corrupt`; everything else, timeouts,
 * closed connections, `LOADING`, `READONLY`, `OOM`, is `Unavailable`.
 */
const classify = (error: unknown): StoreErrorReason => {
  if (error instanceof Error && error.name === "ReplyError") {
    if (error.message.startsWith("WRONGTYPE") || error.message.includes("user_script")) return "Corrupt"
  }
  return "Unavailable"
}

/** ioredis attaches the command's arguments to its errors: keep only the name and message. */
const sanitize = (error: unknown): Error => {
  if (!(error instanceof Error)) return new Error(String(error))
  const clean = new Error(error.message)
  clean.name = error.name
  return clean
}

/** The `StoreError` for a failed Redis call. */
export const storeError = (method: string, error: unknown): StoreError => {
  const reason = classify(error)
  return new StoreError({
    reason,
    method,
    description: reason === "Unavailable" ? "Redis did not answer" : "Redis refused the stored data",
    cause: sanitize(error)
  })
}

/** Redis answered that it does not hold the script (`EVALSHA` of a script it has not loaded, or lost on a restart). */
const isNoScript = (error: unknown): boolean =>
  error instanceof Error && error.name === "ReplyError" && error.message.startsWith("NOSCRIPT")

/**
 * The ioredis settings of a layer's connection. An outage fails fast instead
 * of queueing: no offline queue (a command while disconnected fails at once),
 * in-flight commands failed on disconnect and never re-sent (a re-sent
 * consume could apply twice), and a timeout on every command. Reconnection
 * goes on in the background, so operations succeed again once Redis is back.
 * Auto-pipelining sends the commands issued in one tick in one write.
 */
export const clientOptions = (options: RedisConnectionOptions): IoRedisOptions => ({
  lazyConnect: true,
  enableAutoPipelining: true,
  commandTimeout: millis(options.commandTimeout, "2 seconds"),
  connectTimeout: millis(options.connectTimeout, "5 seconds"),
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  retryStrategy: (attempt) => Math.min(attempt * 100, 1_000),
  ...(options.url === undefined ? { host: options.host ?? "127.0.0.1", port: options.port ?? 6379 } : {}),
  ...(options.url !== undefined && options.host !== undefined ? { host: options.host } : {}),
  ...(options.url !== undefined && options.port !== undefined ? { port: options.port } : {}),
  ...(options.username === undefined ? {} : { username: options.username }),
  ...(options.password === undefined ? {} : { password: reveal(options.password) }),
  ...(options.db === undefined ? {} : { db: options.db }),
  ...(options.tls === true ? { tls: {} } : {})
})

/**
 * Open the connection (waiting until it is ready, or failing with
 * `Unavailable`), load the scripts, and quit on release. An outage is logged
 * once when it starts and once when Redis is back; ioredis' own `error`
 * events are all handled here.
 */
export const connect = (
  options: RedisConnectionOptions,
  scripts: ReadonlyArray<Script>
): Effect.Effect<RedisClient, StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const log = (effect: Effect.Effect<void>) =>
      Runtime.runFork(runtime)(effect.pipe(Effect.annotateLogs("module", "RedisStore")))
    const prefix = options.keyPrefix ?? "mcp:"

    const open = Effect.tryPromise({
      try: async () => {
        const settings = clientOptions(options)
        const redis = options.url === undefined ? new Redis(settings) : new Redis(reveal(options.url), settings)
        let down = false
        let closing = false
        let connected = false
        const markDown = (error: unknown) => {
          // Before the first connection the build itself fails: that is not an outage.
          if (down || closing || !connected) return
          down = true
          log(Effect.logWarning("Redis unreachable: operations fail with StoreError Unavailable until it is back").pipe(
            Effect.annotateLogs("error", sanitize(error).message)
          ))
        }
        redis.on("error", markDown)
        redis.on("close", () => markDown(new Error("connection closed")))
        redis.on("ready", () => {
          connected = true
          if (!down) return
          down = false
          log(Effect.logInfo("Redis reachable again"))
        })
        const close = async (): Promise<void> => {
          closing = true
          await redis.quit().then(() => undefined, () => undefined)
          redis.disconnect()
        }
        try {
          await redis.connect()
          await Promise.all(scripts.map((script) => redis.script("LOAD", script.lua)))
        } catch (error) {
          closing = true
          redis.disconnect()
          throw error
        }
        return { redis, close }
      },
      catch: (error) => storeError("RedisStore.connect", error)
    })

    const { redis } = yield* Effect.acquireRelease(open, ({ close }) => Effect.promise(close))

    function call<A>(method: string, f: (redis: Redis) => Promise<A>): Effect.Effect<A, StoreError>
    function call<A, B>(method: string, f: (redis: Redis) => Promise<A>, reply: Reply<A, B>): Effect.Effect<B, StoreError>
    function call<A, B>(method: string, f: (redis: Redis) => Promise<A>, reply?: Reply<A, B>): Effect.Effect<A | B, StoreError> {
      return reply === undefined ? fromPromise(method, redis, f, succeed) : fromPromise(method, redis, f, reply)
    }

    function run(method: string, script: Script, args: ReadonlyArray<string | number>): Effect.Effect<unknown, StoreError>
    function run<B>(method: string, script: Script, args: ReadonlyArray<string | number>, reply: Reply<unknown, B>): Effect.Effect<B, StoreError>
    function run<B>(method: string, script: Script, args: ReadonlyArray<string | number>, reply?: Reply<unknown, B>): Effect.Effect<unknown, StoreError> {
      return fromScript(method, redis, script, prefix, args, reply ?? succeed)
    }

    return { redis, prefix, call, run } satisfies RedisClient
  })

const succeed = <A>(value: A): Effect.Effect<A, StoreError> => Effect.succeed(value)

/** What `reply` reads from `value`; a `reply` that throws (a bug, not bad data: bad data is a `Left`) is a defect, as in `Effect.map`. */
const answer = <A, B>(reply: Reply<A, B>, value: A): Effect.Effect<B, StoreError> => {
  try {
    return reply(value)
  } catch (defect) {
    return Effect.die(defect)
  }
}

/**
 * A promise-returning ioredis call as one `Effect.async` (a few µs cheaper per
 * call than `Effect.tryPromise` on the hot path), its answer read by `reply`
 * in the callback (see `answer`). A failed call is a `StoreError` of
 * `method`. Either way the fiber is resumed exactly once.
 */
const fromPromise = <A, B>(
  method: string,
  redis: Redis,
  send: (redis: Redis) => Promise<A>,
  reply: Reply<A, B>
): Effect.Effect<B, StoreError> =>
  Effect.async<B, StoreError>((resume) => {
    try {
      send(redis).then(
        (value) => resume(answer(reply, value)),
        (error: unknown) => resume(Effect.fail(storeError(method, error)))
      )
    } catch (error) {
      resume(Effect.fail(storeError(method, error)))
    }
  })

/**
 * Run `script` with `EVALSHA`, as `fromPromise` runs a call; when Redis does
 * not hold it (a restart or `SCRIPT FLUSH` emptied its script cache, or it
 * was not loaded at connect), send it whole with `EVAL`, which also caches it
 * again. `NOSCRIPT` means the script did not run, so resending is safe. The
 * fallback sits in the rejection handler of the one `then` (no `catch` in
 * between: one promise and one microtask less per script). Plain
 * `evalsha`/`eval` calls rather than ioredis' `defineCommand`: every
 * auto-pipeline ioredis opens copies each defined command onto itself (two
 * properties per script, ~40 scripts), which cost more CPU per command than
 * the rest of a store read.
 */
const fromScript = <B>(
  method: string,
  redis: Redis,
  script: Script,
  prefix: string,
  args: ReadonlyArray<string | number>,
  reply: Reply<unknown, B>
): Effect.Effect<B, StoreError> =>
  Effect.async<B, StoreError>((resume) => {
    // Inline arrows, not named consts: under tsx (the bench, the tests) every named closure also costs a
    // `__name` property definition each time it is created.
    try {
      redis.evalsha(script.sha, 0, prefix, ...args).then((value) => resume(answer(reply, value)), (error: unknown) => {
        if (!isNoScript(error)) return resume(Effect.fail(storeError(method, error)))
        try {
          redis.eval(script.lua, 0, prefix, ...args).then(
            (value) => resume(answer(reply, value)),
            (resent: unknown) => resume(Effect.fail(storeError(method, resent)))
          )
        } catch (resent) {
          resume(Effect.fail(storeError(method, resent)))
        }
      })
    } catch (error) {
      resume(Effect.fail(storeError(method, error)))
    }
  })

/** Spans for public operations: see `src/internal/traced.ts`. */
export { traced, tracedWithNow } from "../../internal/traced.ts"
