/**
 * The one log line per request (method, path, status, milliseconds; never a
 * query, header or body). A narrow service, so that an application can write
 * it its own way: the default goes through Effect's logger (`Effect.logInfo`
 * with annotations); the `npm start` application writes the same JSON line
 * straight into its buffered output, which costs a fraction of a logger call
 * on the hot path. The same goes for the lines that say what a request did
 * (`note`: `tokens issued`).
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

/** The annotations of a `note`: names and plain values, never a secret. */
export type NoteAnnotations = Readonly<Record<string, string | number>>

export declare namespace RequestLog {
  export interface Service {
    readonly record: (entry: RequestLogEntry) => Effect.Effect<void>
    /**
     * An `INFO` line about what a request did (`tokens issued`), with its
     * annotations. Optional: without it, the line goes through Effect's
     * logger (`Effect.logInfo` with the annotations).
     */
    readonly note?: (message: string, annotations: NoteAnnotations) => Effect.Effect<void>
  }
}

/** An `INFO` line through Effect's logger, with annotations. */
const logNote = (message: string, annotations: NoteAnnotations): Effect.Effect<void> =>
  Effect.annotateLogs(Effect.logInfo(message), annotations)

/** Write an `INFO` line about a request through `log` (its `note`, or else Effect's logger). */
export const noteRequest = (log: RequestLog.Service, message: string, annotations: NoteAnnotations): Effect.Effect<void> =>
  log.note === undefined ? logNote(message, annotations) : log.note(message, annotations)

/** Through Effect's logger: an `INFO` line `request` with the entry as annotations. */
export const loggerRequestLog: RequestLog.Service = {
  record: (entry) =>
    Effect.logInfo("request").pipe(
      Effect.annotateLogs({ method: entry.method, path: entry.path, status: entry.status, ms: entry.ms })
    ),
  note: logNote
}
