/**
 * The application's log lines: one JSON object per line on stdout (message,
 * level, time, annotations, and the cause of a failure), in the shape of
 * Effect's `Logger.json`, built with one `JSON.stringify` and written in
 * batches: the lines of one turn of the event loop go out in one write
 * instead of one system call each (the request log is one line per request).
 * Whatever is still buffered is written before the process exits.
 */
import { Cause, Clock, Effect, FiberId, Inspectable, List, Logger, LogLevel } from "effect"
import { writeSync } from "node:fs"
import type { RequestLog } from "../http/requestLog.ts"

/** Lines collected during one turn of the event loop, written together. */
interface LineSink {
  readonly write: (line: string) => void
}

/** A sink over stdout: buffered until the next turn (at most 64 KiB), flushed synchronously at exit. */
const stdoutSink = (): LineSink => {
  let pending: Array<string> = []
  let size = 0
  let scheduled = false
  const flush = () => {
    scheduled = false
    if (pending.length === 0) return
    const chunk = pending.join("")
    pending = []
    size = 0
    process.stdout.write(chunk)
  }
  process.once("exit", () => {
    if (pending.length > 0) writeSync(1, pending.join(""))
    pending = []
  })
  return {
    write: (line) => {
      pending.push(line)
      size += line.length
      if (size > 65_536) flush()
      else if (!scheduled) {
        scheduled = true
        setImmediate(flush)
      }
    }
  }
}

/** A message as JSON: strings as they are, anything else as its JSON view. */
const structured = (u: unknown): unknown => typeof u === "string" ? u : Inspectable.toJSON(u)

/** Which requests get a log line: all, only refused and failed ones (status 400 and up), or none. */
export type RequestLogging = "all" | "errors" | "off"

/** The application's log output: Effect's logger, and the request log, writing into one buffered stdout. */
export interface LogOutput {
  readonly logger: Logger.Logger<unknown, void>
  /**
   * The request log line, written straight into the output in the logger's
   * JSON shape (an `INFO` line `request` with method, path, status and ms as
   * annotations), without a logger call per request; and its `note`s
   * (`tokens issued`) the same way, whatever `requests` says. None when
   * `minimum` is above `INFO`.
   */
  readonly requestLog: (minimum: LogLevel.LogLevel, requests: RequestLogging) => RequestLog.Service
}

/** The JSON-lines output of the application. */
export const makeLogOutput = (): LogOutput => {
  const sink = stdoutSink()
  const logger = Logger.make<unknown, void>(({ annotations, cause, date, fiberId, logLevel, message, spans }) => {
    const messages = Array.isArray(message) ? message : [message]
    const entry: Record<string, unknown> = {
      message: messages.length === 1 ? structured(messages[0]) : messages.map(structured),
      logLevel: logLevel.label,
      timestamp: date.toISOString()
    }
    if (!Cause.isEmpty(cause)) entry["cause"] = Cause.pretty(cause, { renderErrorCause: true })
    const notes: Record<string, unknown> = {}
    for (const [key, value] of annotations) notes[key] = structured(value)
    entry["annotations"] = notes
    if (List.isCons(spans)) {
      const now = date.getTime()
      const timings: Record<string, number> = {}
      for (const span of spans) timings[span.label] = now - span.startTime
      entry["spans"] = timings
    }
    entry["fiberId"] = FiberId.threadName(fiberId)
    sink.write(`${JSON.stringify(entry)}\n`)
  })
  /** An `INFO` line in the logger's JSON shape, written straight into the output. */
  const info = (message: string, annotations: object): Effect.Effect<void> =>
    Effect.map(Clock.currentTimeMillis, (now) =>
      sink.write(
        `{"message":${JSON.stringify(message)},"logLevel":"INFO","timestamp":"${new Date(now).toISOString()}",` +
          `"annotations":${JSON.stringify(annotations)}}\n`
      ))
  const requestLog = (minimum: LogLevel.LogLevel, requests: RequestLogging): RequestLog.Service => {
    if (LogLevel.greaterThan(minimum, LogLevel.Info)) return { record: () => Effect.void, note: () => Effect.void }
    return {
      record: (entry) => requests === "off" || (requests === "errors" && entry.status < 400) ? Effect.void : info("request", entry),
      note: info
    }
  }
  return { logger, requestLog }
}
