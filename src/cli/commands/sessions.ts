/** `sessions list` and `sessions revoke`. */
import { Args, Command, Options } from "@effect/cli"
import { Effect, Option, Redacted } from "effect"
import { principalKey } from "../../http/mcp/session.ts"
import type { Session } from "../../schema/session.ts"
import { InvalidInput } from "../errors.ts"
import { keyPrefixOf, revokeSessions, type SessionSelector, sessionsOf } from "../inspect.ts"
import { line } from "../output.ts"
import { formatCount } from "../progress.ts"
import { subject } from "./grants.ts"
import { iso, needSubcommand, onStore, printLines, store, table } from "./shared.ts"

const keyOption = Options.redacted("key").pipe(
  Options.withPseudoName("KEY"),
  Options.withDescription(
    "The API key the sessions belong to; - reads it from stdin (kept out of the process list). Sessions of OAuth users are keyed sub:<subject>: see --subject."
  ),
  Options.optional
)
const subjectKeyOption = subject("The OAuth user whose MCP sessions to select (their key is sub:<subject>).").pipe(Options.optional)
const hashOption = Options.text("key-hash").pipe(
  Options.withPseudoName("PREFIX"),
  Options.withDescription("A prefix of the key's lookup hash, as stats shows it."),
  Options.optional
)

/** The first line of stdin (`--key -`): a key kept out of the process list and the shell history. */
const stdinLine = Effect.tryPromise({
  try: async () => {
    let text = ""
    for await (const chunk of process.stdin) {
      text += String(chunk)
      if (text.includes("\n")) break
    }
    return text.split(/\r?\n/)[0]?.trim() ?? ""
  },
  catch: () => new InvalidInput({ description: "--key -: cannot read the key from stdin" })
}).pipe(Effect.filterOrFail((line) => line.length > 0, () => new InvalidInput({ description: "--key -: stdin holds no key" })))

const selectorOf = (
  key: Option.Option<Redacted.Redacted<string>>,
  subjectKey: Option.Option<string>,
  hash: Option.Option<string>,
  required: boolean
): Effect.Effect<Option.Option<SessionSelector>, InvalidInput> => {
  const given = [Option.isSome(key), Option.isSome(subjectKey), Option.isSome(hash)].filter(Boolean).length
  if (given > 1 || (required && given === 0)) {
    return Effect.fail(new InvalidInput({ description: "choose the sessions with one of --key, --subject or --key-hash" }))
  }
  if (Option.isSome(key)) {
    const value = Redacted.value(key.value)
    return Effect.map(value === "-" ? stdinLine : Effect.succeed(value), (k) => Option.some({ _tag: "Key", key: k }))
  }
  if (Option.isSome(subjectKey)) return Effect.succeed(Option.some({ _tag: "Key", key: principalKey(subjectKey.value) }))
  if (Option.isSome(hash)) {
    return hash.value.length < 4
      ? Effect.fail(new InvalidInput({ description: "--key-hash needs at least 4 characters" }))
      : Effect.succeed(Option.some({ _tag: "HashPrefix", prefix: hash.value }))
  }
  return Effect.succeed(Option.none())
}

const sessionRow = (s: Session) => [
  s.id,
  `${keyPrefixOf(s)}…`,
  s.subject ?? "-",
  s.clientInfo === undefined ? "-" : `${s.clientInfo.name} ${s.clientInfo.version}`,
  s.protocolVersion ?? "-",
  iso(s.lastAccessedAt),
  iso(Math.min(s.idleExpiresAt, s.absoluteExpiresAt))
]

const sessionsList = Command.make(
  "list",
  { store, key: keyOption, subject: subjectKeyOption, keyHash: hashOption },
  ({ key, keyHash, store, subject }) =>
    Effect.gen(function*() {
      const selector = yield* selectorOf(key, subject, keyHash, true)
      const found = yield* onStore(store, sessionsOf(Option.getOrThrow(selector)))
      if (found.length === 0) return yield* line("no live sessions")
      yield* printLines(table([["SESSION", "KEY", "SUBJECT", "CLIENT", "PROTOCOL", "LAST ACCESS", "EXPIRES"], ...found.map(sessionRow)]))
    })
).pipe(Command.withDescription("List the live MCP sessions of an API key, of a user (--subject) or of a key-hash prefix, least recently used first."))

const sessionsRevoke = Command.make(
  "revoke",
  {
    store,
    id: Args.text({ name: "session-id" }).pipe(Args.withDescription("The session to end."), Args.optional),
    key: keyOption,
    subject: subjectKeyOption,
    keyHash: hashOption
  },
  ({ id, key, keyHash, store, subject }) =>
    Effect.gen(function*() {
      const selector = yield* selectorOf(key, subject, keyHash, false)
      if (Option.isSome(id) === Option.isSome(selector)) {
        return yield* new InvalidInput({ description: "sessions revoke: give a session id, or one of --key, --subject, --key-hash" })
      }
      const revoked = yield* onStore(
        store,
        Option.isSome(id)
          ? revokeSessions([id.value])
          : Effect.flatMap(sessionsOf(Option.getOrThrow(selector)), (found) => revokeSessions(found.map((s) => s.id)))
      )
      if (Option.isSome(id) && revoked.length === 0) return yield* new InvalidInput({ description: `no session ${id.value}` })
      yield* printLines([
        ...revoked.map((sessionId) => `ended session ${sessionId}`),
        `${formatCount(revoked.length)} session(s) ended; their clients must initialize again`
      ])
    })
).pipe(Command.withDescription("End an MCP session by id, or every session of an API key, a user (--subject) or a key-hash prefix."))

/** The `sessions` command and its subcommands. */
export const sessions = Command.make("sessions", {}, () => needSubcommand("sessions", "list, revoke")).pipe(
  Command.withDescription("List and end MCP sessions."),
  Command.withSubcommands([sessionsList, sessionsRevoke])
)

