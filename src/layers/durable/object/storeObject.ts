/**
 * The Durable Object class of the backend: export it from your Worker and
 * bind it with SQLite storage (see `../index.ts`). Every method is one RPC
 * call from the layer, and runs synchronously on `ctx.storage.sql` from its
 * first read to its last write, so no other request to the object interleaves
 * with it: that is what makes consume, take, rotation, the session limits,
 * the signing-key compare-and-set, the rate limiter's take and the replay
 * cache's first sighting atomic. Nothing here awaits anything but
 * storage between a check and its write.
 *
 * Time: each call carries the caller's `now` (`CallContext`). Expired rows
 * are swept (bounded batches) when a call arrives and a sweep is due by that
 * time, and by an alarm when the object sits idle. The alarm's time is the
 * last caller time it was planned from plus the real time elapsed since, so
 * an object no one calls still frees its storage, and callers' clocks stay
 * the only source of expiry decisions.
 */
import type { DurableObjectState } from "@cloudflare/workers-types"
import { DurableObject } from "cloudflare:workers"
import { Clock, Effect, Either, Schema } from "effect"
import type { Gcra } from "../../../internal/rateLimit.ts"
import type { SessionRow } from "../../../internal/sessionRow.ts"
import type { RateLimitDecision } from "../../../services/RateLimiter.ts"
import type {
  CallContext,
  ConsumeReply,
  EvictedRow,
  Failure,
  KeySetRow,
  NewRefreshTokenData,
  ProviderMove,
  ProviderRow,
  RefreshRow,
  Reply,
  RotateReply,
  SessionLimits,
  SessionPatchRow,
  SessionTouch,
  StoreProtocol,
  Successor
} from "../protocol.ts"
import { Abort, type Db, failureOf, makeDb } from "./db.ts"
import { dump as dumpRows } from "./dump.ts"
import * as Primitives from "./primitives.ts"
import * as Providers from "./providerTokens.ts"
import * as Registry from "./registry.ts"
import { migrate, T } from "./schema.ts"
import * as Sessions from "./sessions.ts"
import { nextExpiry, sweep as sweepExpired } from "./sweep.ts"
import * as Tokens from "./tokens.ts"

/** Batches per table a sweep on a call's way in may take (the call waits for it). */
const CALL_SWEEP_BATCHES = 1
/** Batches per table an alarm's sweep may take before it hands the rest to the next alarm. */
const ALARM_SWEEP_BATCHES = 20

/** What the alarm will do when it fires, kept in the meta table (it outlives the object's memory). */
const AlarmPlan = Schema.parseJson(Schema.Struct({
  /** The caller time the alarm stands for. */
  at: Schema.Number,
  /** The real time it was set to fire at. */
  real: Schema.Number,
  sweepEvery: Schema.Number,
  graceWindow: Schema.Number
}))
type AlarmPlan = typeof AlarmPlan.Type

const decodePlan = Schema.decodeUnknownEither(AlarmPlan)
const encodePlan = Schema.encodeSync(AlarmPlan)

/** Real time, for scheduling alarms only (Effect's default `Clock`: the object has no caller then). */
const realNow = (): number => Effect.runSync(Clock.currentTimeMillis)

const invalidContext: Failure = { _tag: "Failure", reason: "Invalid", description: "the call carries no valid time" }

const invalidPolicy: Failure = { _tag: "Failure", reason: "Invalid", description: "the call carries no valid rate-limit policy" }

const invalidLifetime: Failure = { _tag: "Failure", reason: "Invalid", description: "the call carries no valid expiry" }

const isContext = (ctx: CallContext): boolean =>
  typeof ctx === "object" && ctx !== null && Number.isFinite(ctx.now) && Number.isFinite(ctx.sweepEvery) &&
  ctx.sweepEvery >= 0 && Number.isFinite(ctx.graceWindow)

/** The store's Durable Object: one instance holds one store (see the layer for how stores map to objects). */
export class StoreObject<Env = unknown> extends DurableObject<Env> implements StoreProtocol {
  readonly #db: Db
  readonly #storage: DurableObjectState["storage"]
  /**
   * `ready` once migrated; a `Failure` when the stored schema is newer than
   * this code (every call answers with it); `undefined` while a migration has
   * not succeeded yet (the next call tries again).
   */
  #schema: "ready" | Failure | undefined
  /** Caller time at or after which a call sweeps on its way in. */
  #nextSweepAt = 0
  /** Whether an alarm is set (read from storage before the first call). */
  #alarmSet = true

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    this.#storage = ctx.storage
    this.#db = makeDb(ctx.storage)
    this.#migrated()
    void ctx.blockConcurrencyWhile(async () => {
      this.#alarmSet = (await ctx.storage.getAlarm()) !== null
    })
  }

  /** The schema up to date: `undefined`, or why the object cannot serve. */
  #migrated(): Failure | undefined {
    if (this.#schema === "ready") return undefined
    if (this.#schema !== undefined) return this.#schema
    try {
      const refused = migrate(this.#db)
      this.#schema = refused ?? "ready"
      return refused
    } catch (error) {
      return failureOf(error)
    }
  }

  /**
   * Run one call: sweep first when due, then `body`; arm the alarm when none
   * is set. Whatever `body` throws becomes the reply's `Failure` (an `Abort`
   * rolled its transaction back and says which).
   */
  #call<A>(ctx: CallContext, body: (db: Db) => A): Reply<A> {
    const unserved = this.#migrated()
    if (unserved !== undefined) return unserved
    if (!isContext(ctx)) return invalidContext
    try {
      if (ctx.now >= this.#nextSweepAt) {
        // One batch per table on a call's way in: a backlog beyond it goes to an alarm at once.
        const swept = sweepExpired(this.#db, ctx.now, ctx.graceWindow, CALL_SWEEP_BATCHES)
        this.#nextSweepAt = ctx.now + ctx.sweepEvery
        if (swept.more) this.#plan(ctx, 0)
      }
      const result = body(this.#db)
      if (!this.#alarmSet) this.#plan(ctx, ctx.sweepEvery)
      return result
    } catch (error) {
      return error instanceof Abort ? error.failure : failureOf(error)
    }
  }

  /** Set the alarm `delay` after the call's time (and as long in real time). A failure leaves the call's result alone. */
  #plan(ctx: CallContext, delay: number): void {
    try {
      this.#arm({ at: ctx.now + delay, real: realNow() + delay, sweepEvery: ctx.sweepEvery, graceWindow: ctx.graceWindow })
    } catch {
      this.#alarmSet = false
    }
  }

  /** Set the alarm and keep its plan beside the data. */
  #arm(plan: AlarmPlan): void {
    const { at, graceWindow, real, sweepEvery } = plan
    this.#db.run(
      `INSERT INTO ${T.meta} (key, value) VALUES ('alarm', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
      encodePlan({ at, real, sweepEvery, graceWindow })
    )
    this.#alarmSet = true
    this.#storage.setAlarm(real).catch(() => {
      this.#alarmSet = false
    })
  }

  /**
   * The idle sweep: at the planned caller time plus however late the alarm
   * fired. Then the next alarm, at the earliest expiry left (never sooner than
   * `sweepEvery`), or none when nothing expires; a backlog too big for one
   * alarm is continued by the next one at once.
   */
  override async alarm(): Promise<void> {
    this.#alarmSet = false
    if (this.#migrated() !== undefined) return
    const stored = this.#db.first<{ readonly value: string }>(`SELECT value FROM ${T.meta} WHERE key = 'alarm'`)
    const plan = stored === undefined ? undefined : Either.getOrUndefined(decodePlan(stored.value))
    if (plan === undefined) return
    const real = realNow()
    const at = plan.at + Math.max(0, real - plan.real)
    const swept = sweepExpired(this.#db, at, plan.graceWindow, ALARM_SWEEP_BATCHES)
    const next = swept.more ? at : nextExpiry(this.#db, plan.graceWindow)
    if (next === undefined) return
    const nextAt = swept.more ? at : Math.max(next, at + plan.sweepEvery)
    this.#arm({ ...plan, at: nextAt, real: real + (nextAt - at) })
  }

  saveTransaction(ctx: CallContext, id: string, envelope: string, expiresAt: number): Reply<null> {
    return this.#call(ctx, (db) => Tokens.saveTransaction(db, id, envelope, expiresAt))
  }
  getTransaction(ctx: CallContext, id: string): Reply<string | null> {
    return this.#call(ctx, (db) => Tokens.getTransaction(db, ctx.now, id))
  }
  takeTransaction(ctx: CallContext, id: string): Reply<string | null> {
    return this.#call(ctx, (db) => Tokens.takeTransaction(db, ctx.now, id))
  }
  saveCode(ctx: CallContext, hash: string, grantId: string, body: string, expiresAt: number): Reply<null> {
    return this.#call(ctx, (db) => Tokens.saveCode(db, hash, grantId, body, expiresAt))
  }
  consumeCode(ctx: CallContext, hash: string): Reply<ConsumeReply> {
    return this.#call(ctx, (db) => Tokens.consumeCode(db, ctx.now, hash))
  }
  saveAccessToken(ctx: CallContext, hash: string, grantId: string, body: string, expiresAt: number): Reply<null> {
    return this.#call(ctx, (db) => Tokens.saveAccessToken(db, hash, grantId, body, expiresAt))
  }
  getAccessToken(ctx: CallContext, hash: string): Reply<string | null> {
    return this.#call(ctx, (db) => Tokens.getAccessToken(db, ctx.now, hash))
  }
  revokeAccessToken(ctx: CallContext, hash: string): Reply<boolean> {
    return this.#call(ctx, (db) => Tokens.revokeAccessToken(db, hash))
  }
  saveRefreshToken(ctx: CallContext, hash: string, input: NewRefreshTokenData, ttl: number): Reply<string> {
    return this.#call(ctx, (db) => Tokens.saveRefreshToken(db, ctx.now, hash, input, ttl))
  }
  getRefreshToken(ctx: CallContext, hash: string): Reply<RefreshRow | null> {
    return this.#call(ctx, (db) => Tokens.getRefreshToken(db, ctx.now, hash))
  }
  rotateRefreshToken(ctx: CallContext, hash: string, successor: Successor): Reply<RotateReply> {
    return this.#call(ctx, (db) => Tokens.rotateRefreshToken(db, ctx.now, ctx.graceWindow, hash, successor))
  }
  saveGrant(ctx: CallContext, id: string, body: string, expiresAt: number): Reply<null> {
    return this.#call(ctx, (db) => Tokens.saveGrant(db, id, body, expiresAt))
  }
  getGrant(ctx: CallContext, id: string): Reply<string | null> {
    return this.#call(ctx, (db) => Tokens.getGrant(db, ctx.now, id))
  }
  revokeGrant(ctx: CallContext, id: string): Reply<boolean> {
    return this.#call(ctx, (db) => Tokens.revokeGrant(db, id))
  }

  getProviderTokens(ctx: CallContext, authorizationId: string, providerId: string): Reply<string | null> {
    return this.#call(ctx, (db) => Providers.getProviderTokens(db, ctx.now, authorizationId, providerId))
  }
  putProviderTokens(ctx: CallContext, authorizationId: string, row: ProviderRow): Reply<null> {
    return this.#call(ctx, (db) => Providers.putProviderTokens(db, authorizationId, row))
  }
  deleteProviderTokens(ctx: CallContext, authorizationId: string, providerId: string): Reply<boolean> {
    return this.#call(ctx, (db) => Providers.deleteProviderTokens(db, authorizationId, providerId))
  }
  listProviderTokens(ctx: CallContext, authorizationId: string): Reply<ReadonlyArray<ProviderRow>> {
    return this.#call(ctx, (db) => Providers.listProviderTokens(db, ctx.now, authorizationId))
  }
  moveProviderTokens(ctx: CallContext, from: string, to: string, moves: ReadonlyArray<ProviderMove>): Reply<null> {
    return this.#call(ctx, (db) => Providers.moveProviderTokens(db, from, to, moves))
  }
  deleteAllProviderTokens(ctx: CallContext, authorizationId: string): Reply<null> {
    return this.#call(ctx, (db) => Providers.deleteAllProviderTokens(db, authorizationId))
  }

  createSession(ctx: CallContext, row: SessionRow, limits: SessionLimits): Reply<ReadonlyArray<EvictedRow>> {
    return this.#call(ctx, (db) => Sessions.createSession(db, ctx.now, row, limits))
  }
  getSession(ctx: CallContext, id: string, touch: SessionTouch): Reply<SessionRow | null> {
    return this.#call(ctx, (db) => Sessions.getSession(db, ctx.now, id, touch))
  }
  updateSession(ctx: CallContext, id: string, patch: SessionPatchRow): Reply<SessionRow | null> {
    return this.#call(ctx, (db) => Sessions.updateSession(db, ctx.now, id, patch))
  }
  deleteSession(ctx: CallContext, id: string): Reply<boolean> {
    return this.#call(ctx, (db) => Sessions.deleteSession(db, id))
  }
  listSessions(ctx: CallContext, apiKeyHash: string): Reply<ReadonlyArray<SessionRow>> {
    return this.#call(ctx, (db) => Sessions.listSessions(db, ctx.now, apiKeyHash))
  }

  putClient(ctx: CallContext, clientId: string, body: string, expiresAt: number | null): Reply<null> {
    if (expiresAt !== null && !Number.isSafeInteger(expiresAt)) return invalidLifetime
    return this.#call(ctx, (db) => Registry.putClient(db, clientId, body, expiresAt))
  }
  getClient(ctx: CallContext, clientId: string): Reply<string | null> {
    return this.#call(ctx, (db) => Registry.getClient(db, ctx.now, clientId))
  }
  deleteClient(ctx: CallContext, clientId: string): Reply<boolean> {
    return this.#call(ctx, (db) => Registry.deleteClient(db, clientId))
  }
  getSigningKeys(ctx: CallContext): Reply<KeySetRow | null> {
    return this.#call(ctx, (db) => Registry.getSigningKeys(db))
  }
  compareAndSetSigningKeys(ctx: CallContext, expectedVersion: number | null, next: KeySetRow): Reply<boolean> {
    return this.#call(ctx, (db) => Registry.compareAndSetSigningKeys(db, expectedVersion, next))
  }

  consumeToken(ctx: CallContext, key: string, policy: Gcra): Reply<RateLimitDecision> {
    if (!Primitives.isGcra(policy)) return invalidPolicy
    return this.#call(ctx, (db) => Primitives.consumeToken(db, ctx.now, key, policy))
  }
  checkTokens(ctx: CallContext, key: string, policy: Gcra): Reply<RateLimitDecision> {
    if (!Primitives.isGcra(policy)) return invalidPolicy
    return this.#call(ctx, (db) => Primitives.checkTokens(db, ctx.now, key, policy))
  }
  refundToken(ctx: CallContext, key: string, policy: Gcra): Reply<null> {
    if (!Primitives.isGcra(policy)) return invalidPolicy
    return this.#call(ctx, (db) => Primitives.refundToken(db, ctx.now, key, policy))
  }
  resetBucket(ctx: CallContext, key: string): Reply<null> {
    return this.#call(ctx, (db) => Primitives.resetBucket(db, key))
  }
  rememberId(ctx: CallContext, key: string, expiresAt: number): Reply<boolean> {
    if (!Number.isSafeInteger(expiresAt)) return invalidLifetime
    return this.#call(ctx, (db) => Primitives.rememberId(db, ctx.now, key, expiresAt))
  }

  sweep(ctx: CallContext): Reply<number> {
    return this.#call(ctx, (db) => sweepExpired(db, ctx.now, ctx.graceWindow, ALARM_SWEEP_BATCHES).removed)
  }
  dump(ctx: CallContext): Reply<ReadonlyArray<string>> {
    return this.#call(ctx, dumpRows)
  }
}
