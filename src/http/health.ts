/**
 * `GET /healthz`: whether this instance can serve. 200 when the store answers
 * and the signing keys are loaded; 503 with the reason otherwise. No secrets,
 * no authentication, never cached.
 */
import { Effect } from "effect"
import { ClientStore } from "../services/ClientStore.ts"
import { Jwks } from "../services/Jwks.ts"
import { jsonResponse } from "./respond.ts"

/** A client id no registration produces: reading it asks the store a real question without finding anything. */
const PROBE_CLIENT_ID = "healthz-probe"

/** Probe the store and the signing keys; answer 200 `{ status: "ok" }` or 503 `{ status: "unavailable", reason }`. */
export const healthz = Effect.gen(function*() {
  const clients = yield* ClientStore
  const jwks = yield* Jwks
  const store = yield* Effect.either(clients.get(PROBE_CLIENT_ID))
  if (store._tag === "Left") {
    yield* Effect.logWarning("health check: the store does not answer").pipe(Effect.annotateLogs({ reason: store.left.reason }))
    return jsonResponse({ status: "unavailable", reason: "the store does not answer" }, { status: 503, noStore: true, headers: { "retry-after": "5" } })
  }
  const published = yield* jwks.publicJwks
  if (published.keys.length === 0) {
    return jsonResponse({ status: "unavailable", reason: "no signing keys are loaded" }, { status: 503, noStore: true, headers: { "retry-after": "5" } })
  }
  return jsonResponse({ status: "ok" }, { noStore: true })
})
