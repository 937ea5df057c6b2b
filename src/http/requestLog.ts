/**
 * The one log line per request (method, path, status, milliseconds; never a
 * query, header or body). A narrow service, so that an application can write
 * it its own way: the default goes through Effect's logger (`Effect.logInfo`
 * with annotations); the `npm start` application writes the same JSON line
 * straight into its buffered output, which costs a fraction of a logger call
 * on the hot path.
 */
import { Context, Effect } from "effect"

/** What one request's log line says. */
export interface RequestLogEntry {
  readonly method: string
  readonly path: string
  readonly status: number
  readonly ms: number
}

/** Where request log lines go. */
export class RequestLog extends Context.Tag("mcp-oauth-store/RequestLog")<RequestLog, RequestLog.Service>() {}

export declare namespace RequestLog {
  export interface Service {
    readonly record: (entry: RequestLogEntry) => Effect.Effect<void>
  }
}

/** Through Effect's logger: an `INFO` line `request` with the entry as annotations. */
export const loggerRequestLog: RequestLog.Service = {
  record: (entry) =>
    Effect.logInfo("request").pipe(
      Effect.annotateLogs({ method: entry.method, path: entry.path, status: entry.status, ms: entry.ms })
    )
}
