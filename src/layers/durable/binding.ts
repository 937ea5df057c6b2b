/**
 * How the layer reaches its objects: the namespace binding (`env.STORE`), one
 * object per name, and a call that carries the caller's time and turns every
 * way a call can fail into a `StoreError`. No `node:` import: part of the
 * Workers bundle.
 */
import type { DurableObjectId } from "@cloudflare/workers-types"
import { Clock, ConfigError, Effect } from "effect"
import { StoreError } from "../../services/StoreError.ts"
import { type CallContext, isFailure, type Reply, type StoreStub } from "./protocol.ts"

/**
 * The part of a Durable Object namespace binding the layer uses: an id per
 * name, and a stub per id. Pass the Worker's `env.STORE` (bound to
 * `StoreObject` with SQLite storage), or Miniflare's `getDurableObjectNamespace`.
 */
export interface StoreNamespace {
  idFromName(name: string): DurableObjectId
  get(id: DurableObjectId): StoreStub
}

/** One object the layer talks to, and the sweep settings every call carries. */
export interface Channel {
  /** Call the object at the current `Clock` time. */
  readonly call: <A>(
    method: string,
    f: (stub: StoreStub, ctx: CallContext) => Promise<Reply<A>>
  ) => Effect.Effect<A, StoreError>
  /** Call the object at `now` (the caller already read the clock, to stamp what it sends). */
  readonly callAt: <A>(
    method: string,
    now: number,
    f: (stub: StoreStub, ctx: CallContext) => Promise<Reply<A>>
  ) => Effect.Effect<A, StoreError>
}

export interface ChannelSettings {
  readonly sweepEvery: number
  readonly graceWindow: number
}

/** Keep only the name and message of a failure: nothing the runtime attached to it. */
const sanitize = (error: unknown): Error => {
  if (!(error instanceof Error)) return new Error("Durable Object call failed")
  const clean = new Error(error.message)
  clean.name = error.name
  return clean
}

/**
 * The channel to the object named `name`. Its id is computed once; its stub is
 * taken per call, because on Workers a stub belongs to the request that made
 * it (measured: a stub kept across requests fails with "Cannot perform I/O on
 * behalf of a different request"), while ids may be kept.
 *
 * A call that does not come back (the object unreachable, reset, overloaded,
 * or the binding gone) is `Unavailable`: it may still have been applied, as
 * with any remote store. A failure the object reports keeps its reason.
 */
export const makeChannel = (namespace: StoreNamespace, name: string, settings: ChannelSettings): Channel => {
  const id = namespace.idFromName(name)
  const callAt = <A>(method: string, now: number, f: (stub: StoreStub, ctx: CallContext) => Promise<Reply<A>>) =>
    Effect.tryPromise({
      try: () => f(namespace.get(id), { now, sweepEvery: settings.sweepEvery, graceWindow: settings.graceWindow }),
      catch: (error) =>
        new StoreError({
          reason: "Unavailable",
          method,
          description: "the Durable Object call failed",
          cause: sanitize(error)
        })
    }).pipe(
      Effect.flatMap((reply) =>
        isFailure(reply)
          ? Effect.fail(new StoreError({ reason: reply.reason, method, description: reply.description }))
          : Effect.succeed(reply)
      )
    )
  return {
    callAt,
    call: (method, f) => Effect.flatMap(Clock.currentTimeMillis, (now) => callAt(method, now, f))
  }
}

const isNamespace = (value: unknown): value is StoreNamespace =>
  typeof value === "object" && value !== null &&
  ["idFromName", "get"].every((name) => typeof Reflect.get(value, name) === "function")

/**
 * The Durable Object namespace bound as `name` in a Worker's `env`:
 * `MissingData` when there is none, `InvalidData` when it is something else.
 */
export const namespaceFromEnv = (env: object, name: string): Effect.Effect<StoreNamespace, ConfigError.ConfigError> => {
  const value: unknown = Reflect.get(env, name)
  if (value === undefined) {
    return Effect.fail(
      ConfigError.MissingData([name], `no Durable Object namespace is bound as ${name} (wrangler.toml [[durable_objects.bindings]])`)
    )
  }
  return isNamespace(value)
    ? Effect.succeed(value)
    : Effect.fail(ConfigError.InvalidData([name], `${name} is not a Durable Object namespace binding`))
}
