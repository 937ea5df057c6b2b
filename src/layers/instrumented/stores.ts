/**
 * Each store service with every method measured (`Recorder`), and the
 * outcomes its results show counted: session evictions, authorization-code
 * replays, refresh-token reuse detections, compare-and-set conflicts,
 * rate-limit refusals, replayed ids, decrypt failures. The backend's own
 * service does the work; nothing here changes a result.
 */
import { Effect } from "effect"
import {
  codeReplays,
  decryptFailures,
  rateLimitRefusals,
  refreshReuseDetections,
  replaysDetected,
  series,
  sessionEvictions,
  casConflicts
} from "../../internal/metrics.ts"
import type { ClientStore } from "../../services/ClientStore.ts"
import type { Crypto } from "../../services/Crypto.ts"
import type { McpEventBus } from "../../services/McpEventBus.ts"
import type { McpEventStore } from "../../services/McpEventStore.ts"
import type { ProviderTokenStore } from "../../services/ProviderTokenStore.ts"
import type { RateLimiter } from "../../services/RateLimiter.ts"
import type { RefreshLock } from "../../services/RefreshLock.ts"
import type { ReplayCache } from "../../services/ReplayCache.ts"
import type { SessionStore } from "../../services/SessionStore.ts"
import type { SigningKeyStore } from "../../services/SigningKeyStore.ts"
import type { TokenStore } from "../../services/TokenStore.ts"
import { countersBy, NO_LABELS, type Recorder } from "./recorder.ts"

/** Marks a service this module built, so instrumenting twice wraps once. */
const INSTRUMENTED = Symbol.for("mcp-oauth-store/instrumented")

/** Whether `service` is already one of ours. */
export const isInstrumented = (service: object): boolean => INSTRUMENTED in service

const mark = <S extends object>(service: S): S => Object.defineProperty(service, INSTRUMENTED, { value: true })

/** `TokenStore` with every method measured; code replays and refresh reuse counted. */
export const instrumentTokenStore = (store: TokenStore.Service, recorder: Recorder): TokenStore.Service => {
  const m = (method: string) => recorder.measure(`TokenStore.${method}`)
  const saveTransaction = m("saveTransaction")
  const getTransaction = m("getTransaction")
  const takeTransaction = m("takeTransaction")
  const saveCode = m("saveCode")
  const consumeCode = m("consumeCode")
  const saveAccessToken = m("saveAccessToken")
  const getAccessToken = m("getAccessToken")
  const revokeAccessToken = m("revokeAccessToken")
  const saveRefreshToken = m("saveRefreshToken")
  const getRefreshToken = m("getRefreshToken")
  const rotateRefreshToken = m("rotateRefreshToken")
  const saveGrant = m("saveGrant")
  const getGrant = m("getGrant")
  const revokeGrant = m("revokeGrant")
  const replays = series(codeReplays, { backend: recorder.backend }).register()
  const reuse = series(refreshReuseDetections, { backend: recorder.backend }).register()
  return mark({
    saveTransaction: (transaction) => saveTransaction(store.saveTransaction(transaction)),
    getTransaction: (id) => getTransaction(store.getTransaction(id)),
    takeTransaction: (id) => takeTransaction(store.takeTransaction(id)),
    saveCode: (code, record) => saveCode(store.saveCode(code, record)),
    consumeCode: (code) =>
      consumeCode(store.consumeCode(code), (consumption) => {
        if (consumption._tag === "Replayed") replays.unsafeUpdate(1, NO_LABELS)
      }),
    saveAccessToken: (token, record) => saveAccessToken(store.saveAccessToken(token, record)),
    getAccessToken: (token) => getAccessToken(store.getAccessToken(token)),
    revokeAccessToken: (token) => revokeAccessToken(store.revokeAccessToken(token)),
    saveRefreshToken: (token, record) => saveRefreshToken(store.saveRefreshToken(token, record)),
    getRefreshToken: (token) => getRefreshToken(store.getRefreshToken(token)),
    rotateRefreshToken: (presented, successor) =>
      rotateRefreshToken(store.rotateRefreshToken(presented, successor), (rotation) => {
        if (rotation._tag === "ReuseDetected") reuse.unsafeUpdate(1, NO_LABELS)
      }),
    saveGrant: (grant) => saveGrant(store.saveGrant(grant)),
    getGrant: (id) => getGrant(store.getGrant(id)),
    revokeGrant: (id) => revokeGrant(store.revokeGrant(id))
  })
}

/** `SessionStore` with every method measured; evictions counted by reason. */
export const instrumentSessionStore = (store: SessionStore.Service, recorder: Recorder): SessionStore.Service => {
  const m = (method: string) => recorder.measure(`SessionStore.${method}`)
  const create = m("create")
  const get = m("get")
  const update = m("update")
  const remove = m("delete")
  const listByApiKey = m("listByApiKey")
  const evictions = {
    PerKeyLimit: series(sessionEvictions, { backend: recorder.backend, reason: "PerKeyLimit" }).register(),
    GlobalLimit: series(sessionEvictions, { backend: recorder.backend, reason: "GlobalLimit" }).register()
  }
  return mark({
    create: (input) =>
      create(store.create(input), (created) => {
        for (const eviction of created.evicted) evictions[eviction.reason].unsafeUpdate(1, NO_LABELS)
      }),
    get: (id) => get(store.get(id)),
    update: (id, patch) => update(store.update(id, patch)),
    delete: (id) => remove(store.delete(id)),
    listByApiKey: (apiKey) => listByApiKey(store.listByApiKey(apiKey))
  })
}

/** `ProviderTokenStore` with every method measured. */
export const instrumentProviderTokenStore = (store: ProviderTokenStore.Service, recorder: Recorder): ProviderTokenStore.Service => {
  const m = (method: string) => recorder.measure(`ProviderTokenStore.${method}`)
  const storeTokens = m("storeTokens")
  const getTokens = m("getTokens")
  const deleteTokens = m("deleteTokens")
  const getProviderIds = m("getProviderIds")
  const migrateTokens = m("migrateTokens")
  const deleteAll = m("deleteAll")
  return mark({
    storeTokens: (authorizationId, providerId, tokens) => storeTokens(store.storeTokens(authorizationId, providerId, tokens)),
    getTokens: (authorizationId, providerId) => getTokens(store.getTokens(authorizationId, providerId)),
    deleteTokens: (authorizationId, providerId) => deleteTokens(store.deleteTokens(authorizationId, providerId)),
    getProviderIds: (authorizationId) => getProviderIds(store.getProviderIds(authorizationId)),
    migrateTokens: (from, to) => migrateTokens(store.migrateTokens(from, to)),
    deleteAll: (authorizationId) => deleteAll(store.deleteAll(authorizationId))
  })
}

/** `ClientStore` with every method measured. */
export const instrumentClientStore = (store: ClientStore.Service, recorder: Recorder): ClientStore.Service => {
  const m = (method: string) => recorder.measure(`ClientStore.${method}`)
  const register = m("register")
  const get = m("get")
  const authenticate = m("authenticate")
  const remove = m("delete")
  return mark({
    register: (client) => register(store.register(client)),
    get: (clientId) => get(store.get(clientId)),
    authenticate: (clientId, secret) => authenticate(store.authenticate(clientId, secret)),
    delete: (clientId) => remove(store.delete(clientId))
  })
}

/** `SigningKeyStore` measured; a compare-and-set another writer won counted as a conflict. */
export const instrumentSigningKeyStore = (store: SigningKeyStore.Service, recorder: Recorder): SigningKeyStore.Service => {
  const get = recorder.measure("SigningKeyStore.get")
  const compareAndSet = recorder.measure("SigningKeyStore.compareAndSet")
  const conflicts = series(casConflicts, { operation: "SigningKeyStore.compareAndSet", backend: recorder.backend }).register()
  return mark({
    get: get(store.get),
    compareAndSet: (expectedVersion, next) =>
      compareAndSet(store.compareAndSet(expectedVersion, next), (written) => {
        if (!written) conflicts.unsafeUpdate(1, NO_LABELS)
      })
  })
}

/** `RateLimiter` with every method measured; refusals counted by bucket. */
export const instrumentRateLimiter = (limiter: RateLimiter.Service, recorder: Recorder): RateLimiter.Service => {
  const m = (method: string) => recorder.measure(`RateLimiter.${method}`)
  const consume = m("consume")
  const check = m("check")
  const refund = m("refund")
  const reset = m("reset")
  const refused = countersBy((bucket) => series(rateLimitRefusals, { backend: recorder.backend, bucket }))
  return mark({
    consume: (policy, key) =>
      consume(limiter.consume(policy, key), (decision) => {
        if (!decision.allowed) refused(policy.bucket)
      }),
    check: (policy, key) => check(limiter.check(policy, key)),
    refund: (policy, key) => refund(limiter.refund(policy, key)),
    reset: (policy, key) => reset(limiter.reset(policy, key))
  })
}

/** `ReplayCache` measured; ids seen again counted by scope. */
export const instrumentReplayCache = (cache: ReplayCache.Service, recorder: Recorder): ReplayCache.Service => {
  const remember = recorder.measure("ReplayCache.remember")
  const replayed = countersBy((scope) => series(replaysDetected, { backend: recorder.backend, scope }))
  return mark({
    remember: (scope, id, ttl) =>
      remember(cache.remember(scope, id, ttl), (sighting) => {
        if (sighting === "Replayed") replayed(scope)
      })
  })
}

/** `RefreshLock` with both methods measured. */
export const instrumentRefreshLock = (lock: RefreshLock.Service, recorder: Recorder): RefreshLock.Service => {
  const acquire = recorder.measure("RefreshLock.acquire")
  const release = recorder.measure("RefreshLock.release")
  return mark({
    acquire: (key, ttl) => acquire(lock.acquire(key, ttl)),
    release: (lease) => release(lock.release(lease))
  })
}

/** `McpEventStore` with every method measured. */
export const instrumentMcpEventStore = (store: McpEventStore.Service, recorder: Recorder): McpEventStore.Service => {
  const m = (method: string) => recorder.measure(`McpEventStore.${method}`)
  const openStream = m("openStream")
  const append = m("append")
  const replay = m("replay")
  const closeStream = m("closeStream")
  return mark({
    openStream: (owner, options) => openStream(store.openStream(owner, options)),
    append: (streamId, message) => append(store.append(streamId, message)),
    replay: (lastEventId, owner) => replay(store.replay(lastEventId, owner)),
    closeStream: (streamId) => closeStream(store.closeStream(streamId))
  })
}

/** `McpEventBus` with `publish` and `subscribe` (setting the subscription up) measured. */
export const instrumentMcpEventBus = (bus: McpEventBus.Service, recorder: Recorder): McpEventBus.Service => {
  const publish = recorder.measure("McpEventBus.publish")
  const subscribe = recorder.measure("McpEventBus.subscribe")
  return mark({
    publish: (event) => publish(bus.publish(event)),
    subscribe: subscribe(bus.subscribe),
    subscriptions: bus.subscriptions
  })
}

/** `Crypto` with the envelopes that would not open counted by reason; nothing else changes. */
export const instrumentCrypto = (crypto: Crypto.Service): Crypto.Service => {
  series(decryptFailures, { reason: "DecryptFailed" }).register()
  const failed = countersBy((reason) => series(decryptFailures, { reason }))
  return mark({
    activeKeyId: crypto.activeKeyId,
    encrypt: crypto.encrypt,
    decrypt: (envelope, recordKey) => Effect.tapError(crypto.decrypt(envelope, recordKey), (error) => Effect.sync(() => failed(error.reason))),
    hash: crypto.hash,
    randomToken: crypto.randomToken,
    timingSafeEqual: crypto.timingSafeEqual
  })
}
