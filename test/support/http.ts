/**
 * For handler-level tests: a handler's response read as a browser would
 * (status, headers, body text, parsed JSON), and log lines captured so a test
 * can check what was logged and that no secret was.
 */
import { HttpServerResponse } from "@effect/platform"
import { Effect, Logger } from "effect"

export interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly body: string
  /** The parsed body; `any` so assertions can walk JSON replies without a cast at every step. */
  readonly json: any
}

const parse = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

export const answer = (response: HttpServerResponse.HttpServerResponse) =>
  Effect.promise(async (): Promise<Answer> => {
    const web = HttpServerResponse.toWeb(response)
    const body = await web.text()
    return { status: web.status, headers: web.headers, body, json: body === "" ? undefined : parse(body) }
  })

/** Log lines (`message {annotations}`) of the effects run with `captured`. */
export const captureLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ annotations, message }) => {
    lines.push(`${String(message)} ${JSON.stringify(Object.fromEntries(annotations))}`)
  })
  return {
    lines,
    /** Run `effect` with its logs captured (the lines of earlier runs cleared). */
    captured: <A, E, R>(effect: Effect.Effect<A, E, R>) => {
      lines.length = 0
      return Effect.provide(effect, Logger.replace(Logger.defaultLogger, logger))
    }
  }
}
