/**
 * Every metric this package records, in one place: names, help texts,
 * histogram boundaries and label sets. Series are built from `MetricKey`s
 * with their labels fixed (`series`), so an update finds its hook in the
 * metric's own cache instead of building and hashing a tagged key per call.
 *
 * Labels are operation names, backend names, reasons and configured names
 * (rate-limit buckets, replay scopes, provider ids): never a secret, a user,
 * a client or a token, so every label set is small and bounded.
 *
 * The state lives in Effect's metric registry (`Metric.snapshot`), which the
 * Prometheus rendering (`/metrics`) and the OTLP exporter both read.
 */
import { Effect, Metric, MetricBoundaries, MetricKey, MetricLabel } from "effect"
import type { MetricKeyType } from "effect"

/** One labelled series of a metric key: its updates go straight to its registry hook. */
export const series = <Type extends MetricKeyType.MetricKeyType<any, any>>(
  key: MetricKey.MetricKey<Type>,
  labels: Readonly<Record<string, string>>
) =>
  Metric.fromMetricKey(
    MetricKey.taggedWithLabels(key, Object.entries(labels).map(([name, value]) => MetricLabel.make(name, value)))
  )

/** An incremental counter key (Prometheus `counter`). */
const counter = (name: string, description: string) => MetricKey.counter(name, { description, incremental: true })

/**
 * Latency buckets in seconds, from 10 µs (a memory store's read) to 2.5 s (a
 * backend that is struggling); written out so the `le` labels read as typed.
 */
export const LATENCY_BOUNDARIES = MetricBoundaries.fromIterable([
  0.00001,
  0.000025,
  0.00005,
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5
])

// ---------------------------------------------------------------------------
// Store operations (recorded by the instrumented stores, `Metrics.instrument`)

/** Calls of a store method, by `operation` (`TokenStore.consumeCode`) and `backend`. */
export const storeOperations = counter("mcp_store_operations_total", "Store operations called, by operation and backend")

/** How long store methods take, by `operation` and `backend`. */
export const storeOperationDuration = MetricKey.histogram(
  "mcp_store_operation_duration_seconds",
  LATENCY_BOUNDARIES,
  "Time a store operation took, by operation and backend"
)

/** Store methods that failed, by `operation`, `backend` and `reason` (a `StoreError` reason, or `Defect`). */
export const storeErrors = counter("mcp_store_errors_total", "Store operations that failed, by operation, backend and StoreError reason")

/** Sessions a `SessionStore.create` removed to stay within its limits, by `backend` and `reason`. */
export const sessionEvictions = counter(
  "mcp_store_session_evictions_total",
  "MCP sessions evicted to stay within the per-key or global limit, by backend and reason"
)

/** Compare-and-set writes that lost to another writer, by `operation` and `backend`. */
export const casConflicts = counter(
  "mcp_store_cas_conflicts_total",
  "Compare-and-set writes that another writer won (signing keys; Conflict errors), by operation and backend"
)

/** Rotated refresh tokens presented again outside the grace window (the grant was revoked), by `backend`. */
export const refreshReuseDetections = counter(
  "mcp_store_refresh_reuse_detections_total",
  "Rotated refresh tokens presented again outside the grace window (their grant was revoked), by backend"
)

/** Authorization codes presented a second time (their grant is revoked), by `backend`. */
export const codeReplays = counter(
  "mcp_store_code_replays_total",
  "Authorization codes presented after they were consumed, by backend"
)

/** `RateLimiter.consume` calls refused, by `backend` and `bucket`. */
export const rateLimitRefusals = counter(
  "mcp_store_rate_limit_refusals_total",
  "Rate-limited actions refused, by backend and bucket"
)

/** `ReplayCache.remember` calls that found the id already seen, by `backend` and `scope`. */
export const replaysDetected = counter(
  "mcp_store_replays_detected_total",
  "Single-use ids (DPoP proofs) seen a second time, by backend and scope"
)

/** Envelopes that would not open (`Crypto.decrypt`), by `reason` (`DecryptFailed`, `Corrupt`). */
export const decryptFailures = counter(
  "mcp_crypto_decrypt_failures_total",
  "Sealed values that could not be opened with any key of the keyring, by reason"
)

/** The KV layer's writes that failed and were kept in memory instead (`KvHealth.writeFailures`, process-wide). */
export const kvWriteFailures = Metric.fromMetricKey(counter(
  "mcp_store_kv_write_failures_total",
  "Cloudflare KV writes that failed and were kept in memory instead"
))

// ---------------------------------------------------------------------------
// The OAuth engine (recorded where it happens: rare next to store operations)

const tokensIssuedKey = counter(
  "mcp_oauth_tokens_issued_total",
  "Tokens issued by the token endpoint, by grant type and token (access, refresh)"
)

/** Tokens issued by the token endpoint, per grant type and token kind. */
export const tokensIssued = {
  authorizationCode: {
    access: series(tokensIssuedKey, { grant_type: "authorization_code", token: "access" }),
    refresh: series(tokensIssuedKey, { grant_type: "authorization_code", token: "refresh" })
  },
  refreshToken: {
    access: series(tokensIssuedKey, { grant_type: "refresh_token", token: "access" }),
    refresh: series(tokensIssuedKey, { grant_type: "refresh_token", token: "refresh" })
  }
} as const

/** Put the token counters in the registry at 0, so a scrape shows them before the first token is issued. */
export const registerEngineMetrics: Effect.Effect<void> = Effect.sync(() => {
  for (const grant of Object.values(tokensIssued)) {
    grant.access.register()
    grant.refresh.register()
  }
})

const upstreamRefreshesKey = counter(
  "mcp_upstream_refreshes_total",
  "Provider tokens refreshed at the upstream token endpoint, by provider and outcome"
)

/** An upstream refresh of a provider's tokens, by provider id and outcome (`ok`, or an `UpstreamTokenError` reason). */
export const upstreamRefreshes = (providerId: string, outcome: string) =>
  series(upstreamRefreshesKey, { provider: providerId, outcome })
