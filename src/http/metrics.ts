/**
 * `GET /metrics`: every metric of the process (Effect's metric registry:
 * the instrumented stores, the OAuth engine's counters, anything the
 * application records) in the Prometheus text format. Served by the main
 * router only when `MetricsExposition` says so (`McpServer` option
 * `metrics`); `metricsApp` serves it alone, for a port of its own.
 */
import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { HttpApp } from "@effect/platform"
import { Context, Effect, Metric } from "effect"
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "../internal/prometheus.ts"
import { NO_STORE, notFoundResponse } from "./respond.ts"

/** The current metrics in the Prometheus text format (from `Metric.snapshot`). */
export const prometheusText: Effect.Effect<string> = Effect.map(Metric.snapshot, renderPrometheus)

/** The `/metrics` response: the Prometheus text, never cached. */
export const metricsResponse: Effect.Effect<HttpServerResponse.HttpServerResponse> = Effect.map(prometheusText, (body) =>
  HttpServerResponse.text(body, { contentType: PROMETHEUS_CONTENT_TYPE, headers: NO_STORE }))

/** Whether the main router answers `GET /metrics` (`McpServer` option `metrics`); when not, the route is a 404. */
export class MetricsExposition extends Context.Tag("mcp-oauth-store/MetricsExposition")<MetricsExposition, {
  readonly enabled: boolean
}>() {}

/** The main router's `GET /metrics`: the metrics when exposed there, a 404 otherwise. */
export const metricsRoute: Effect.Effect<HttpServerResponse.HttpServerResponse, never, MetricsExposition> = Effect.flatMap(
  MetricsExposition,
  (exposition) => exposition.enabled ? metricsResponse : Effect.succeed(notFoundResponse())
)

/** `GET /metrics` alone (a 404 for anything else): for a metrics port of its own. Requests are not logged. */
export const metricsApp: HttpApp.Default = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
  const path = request.url.split("?")[0]
  return request.method === "GET" && path === "/metrics" ? metricsResponse : Effect.succeed(notFoundResponse())
})
