/**
 * A real `redis-server` process: started from the binary on PATH on a free
 * loopback port (`--save '' --appendonly no`: nothing touches the disk) and
 * stopped when its scope closes. No test-runner imports, so the bench uses it
 * too; test files use `./redis.ts`.
 */
import { Effect, Layer, type Scope } from "effect"
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { randomUUID } from "node:crypto"
import { createServer, Socket } from "node:net"
import { Redis } from "ioredis"
import { scanKeys } from "../../src/layers/redis/rawStorage.ts"

/** A `redis-server` process this test run owns. */
export interface RedisServer {
  readonly port: number
  readonly url: string
  /** Stop the process (an outage). */
  readonly stop: Effect.Effect<void>
  /** Start it again on the same port. */
  readonly start: Effect.Effect<void>
  /** Freeze the process (`SIGSTOP`): connections stay open, nothing answers. */
  readonly freeze: Effect.Effect<void>
  /** Let a frozen process run again (`SIGCONT`). */
  readonly thaw: Effect.Effect<void>
}

/** Whether `redis-server` is on PATH. */
export const hasRedisServer: boolean = spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0

/** A free TCP port on the loopback interface. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** One `PING` over a plain socket: `true` on `+PONG`. */
const ping = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = new Socket()
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once("error", () => done(false))
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")))
    socket.connect(port, "127.0.0.1", () => socket.write("PING\r\n"))
  })

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once("exit", () => resolve()))

/** Start `redis-server` on `port` and wait until it answers; fails if it exits first. */
const launch = async (port: number): Promise<ChildProcess> => {
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"],
    { stdio: "ignore" }
  )
  let gone = false
  void exited(child).then(() => (gone = true))
  for (let attempt = 0; attempt < 200; attempt++) {
    if (gone) throw new Error(`redis-server exited while starting on port ${port}`)
    if (await ping(port)) return child
    await sleep(25)
  }
  child.kill("SIGKILL")
  throw new Error(`redis-server did not answer on port ${port}`)
}

const terminate = async (child: ChildProcess): Promise<void> => {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill("SIGCONT")
  child.kill("SIGTERM")
  const killed = setTimeout(() => child.kill("SIGKILL"), 3_000)
  await exited(child)
  clearTimeout(killed)
}

/** A fresh `redis-server` on a free port, stopped when the scope closes. */
export const acquireRedisServer: Effect.Effect<RedisServer, Error, Scope.Scope> = Effect.acquireRelease(
  Effect.tryPromise({
    try: async () => {
      // A port found free can be taken before the server binds it: try a few.
      for (let attempt = 0; ; attempt++) {
        const port = await freePort()
        try {
          return { port, child: await launch(port) }
        } catch (error) {
          if (attempt >= 3) throw error
        }
      }
    },
    catch: (error) => error instanceof Error ? error : new Error(String(error))
  }),
  (state) => Effect.promise(() => terminate(state.child))
).pipe(Effect.map((state): RedisServer => ({
  port: state.port,
  url: `redis://127.0.0.1:${state.port}`,
  stop: Effect.promise(() => terminate(state.child)),
  start: Effect.promise(async () => {
    state.child = await launch(state.port)
  }),
  freeze: Effect.sync(() => void state.child.kill("SIGSTOP")),
  thaw: Effect.sync(() => void state.child.kill("SIGCONT"))
})))

/** A key prefix no other build uses, so builds sharing one server are isolated. */
export const freshPrefix = (): string => `test:${randomUUID()}:`

/** Deletes every key under `prefix` when released (for a shared, external server). */
export const cleanupPrefix = (url: string, prefix: string): Layer.Layer<never> =>
  Layer.scopedDiscard(Effect.addFinalizer(() =>
    Effect.promise(async () => {
      const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
      redis.on("error", () => undefined)
      try {
        await redis.connect()
        const keys = await scanKeys(redis, prefix)
        for (let i = 0; i < keys.length; i += 500) await redis.unlink(...keys.slice(i, i + 500))
      } catch {
        // Best effort: keys left behind expire (PX) or stay under their unique prefix.
      } finally {
        redis.disconnect()
      }
    })
  ))
