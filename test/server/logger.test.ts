/**
 * The application's log output: the request log and its notes (`tokens
 * issued`) written straight into the buffered stdout in the shape of the
 * logger's own lines; a note whatever `LOG_REQUESTS` says, neither above
 * `INFO`. stdout is read by replacing its `write` for the test (the output
 * writes there on the next turn of the event loop).
 */
import { afterEach, beforeEach, describe, expect, it } from "@effect/vitest"
import { Effect, Logger, LogLevel } from "effect"
import { makeLogOutput } from "../../src/server/logger.ts"

const written: Array<string> = []
const originalWrite = process.stdout.write.bind(process.stdout)

beforeEach(() => {
  written.length = 0
  process.stdout.write = ((chunk: string | Uint8Array) => {
    written.push(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8"))
    return true
  }) as typeof process.stdout.write
})

afterEach(() => {
  process.stdout.write = originalWrite
})

/** The lines written once the output has flushed (it writes on the next turn). */
const flushed = async (): Promise<Array<Record<string, unknown>>> => {
  await new Promise((resolve) => setImmediate(resolve))
  return written.join("").split("\n").filter((line) => line.length > 0).map((line) => JSON.parse(line) as Record<string, unknown>)
}

const ISSUED = { grant_type: "refresh_token", client_id: "client-1", grant_id: "grant-1", token_type: "Bearer" }

describe("the application's log output", () => {
  it("a note is a line in the logger's shape: message, INFO, timestamp, the annotations", async () => {
    const output = makeLogOutput()
    const log = output.requestLog(LogLevel.Info, "all")
    await Effect.runPromise(log.note?.("tokens issued", ISSUED) ?? Effect.die("no note"))
    await Effect.runPromise(Effect.logInfo("tokens issued").pipe(Effect.annotateLogs(ISSUED), Effect.provide(Logger.replace(Logger.defaultLogger, output.logger))))
    const [note, logged] = await flushed()
    expect(note).toEqual({ message: "tokens issued", logLevel: "INFO", timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), annotations: ISSUED })
    // The logger's line says the same, and adds the fiber.
    const { fiberId, ...rest } = logged ?? {}
    expect(fiberId).toEqual(expect.any(String))
    expect(Object.keys(rest)).toEqual(Object.keys(note ?? {}))
    expect(rest["annotations"]).toEqual(ISSUED)
  })

  it("notes are written whatever LOG_REQUESTS says; request lines follow it", async () => {
    const output = makeLogOutput()
    for (const requests of ["all", "errors", "off"] as const) {
      const log = output.requestLog(LogLevel.Info, requests)
      await Effect.runPromise(log.record({ method: "POST", path: "/token", status: 200, ms: 1.5 }))
      await Effect.runPromise(log.record({ method: "POST", path: "/token", status: 400, ms: 0.5 }))
      await Effect.runPromise(log.note?.("tokens issued", { ...ISSUED, mode: requests }) ?? Effect.die("no note"))
    }
    const lines = (await flushed()).map((line) => `${line["message"]} ${JSON.stringify(line["annotations"])}`)
    expect(lines).toEqual([
      `request {"method":"POST","path":"/token","status":200,"ms":1.5}`,
      `request {"method":"POST","path":"/token","status":400,"ms":0.5}`,
      `tokens issued ${JSON.stringify({ ...ISSUED, mode: "all" })}`,
      `request {"method":"POST","path":"/token","status":400,"ms":0.5}`,
      `tokens issued ${JSON.stringify({ ...ISSUED, mode: "errors" })}`,
      `tokens issued ${JSON.stringify({ ...ISSUED, mode: "off" })}`
    ])
  })

  it("above INFO neither request lines nor notes are written", async () => {
    const log = makeLogOutput().requestLog(LogLevel.Warning, "all")
    await Effect.runPromise(log.record({ method: "POST", path: "/token", status: 500, ms: 1 }))
    await Effect.runPromise(log.note?.("tokens issued", ISSUED) ?? Effect.die("no note"))
    expect(await flushed()).toEqual([])
  })
})
