/**
 * The commands of `mcp-oauth-store` (@effect/cli): keygen, rekey, migrate,
 * stats, grants, sessions. Each opens the store it is given (`--store`, or
 * the one the server's settings choose) with the server's keys, does its work
 * through `StoreMaintenance` and the stores, and prints a result on stdout
 * (progress goes to stderr).
 */
import { Args, Command, Options } from "@effect/cli"
import { Context, DateTime, Duration, Effect, Either, Layer, Option, Redacted } from "effect"
import { promises as fs } from "node:fs"
import { principalKey } from "../http/mcp/session.ts"
import { decodeKey, generateKey, keyId } from "../layers/crypto/keyring.ts"
import { Crypto } from "../services/Crypto.ts"
import type { Session } from "../schema/session.ts"
import { StoreMaintenance } from "../services/StoreMaintenance.ts"
import { InvalidInput } from "./errors.ts"
import { grantsOf, keyPrefixOf, revokeGrants, revokeSessions, type SessionSelector, sessionsOf } from "./inspect.ts"
import { migrate } from "./migrate.ts"
import { CliOutput, line } from "./output.ts"
import { DEFAULT_LINE_INTERVAL, formatCount, makeProgress } from "./progress.ts"
import { rekey } from "./rekey.ts"
import { collectStats, KIND_LABELS, renderStats } from "./stats.ts"
import { cliCrypto, displayOf, openStore, resolveStore } from "./stores.ts"
import { RECORD_KINDS } from "../schema/storedRecord.ts"

// ---------------------------------------------------------------------------
// Shared options and plumbing

const STORE_HELP = "The store to work on: sqlite:PATH, file:PATH or redis://[user:password@]HOST:PORT/DB[?prefix=PREFIX] " +
  "(rediss:// for TLS). Default: the server's settings (STORE, DATA_DIR, SQLITE_PATH, RS_TOKENS_FILE, REDIS_URL, REDIS_KEY_PREFIX)."

const store = Options.text("store").pipe(Options.withPseudoName("STORE"), Options.withDescription(STORE_HELP), Options.optional)

const batchSize = Options.integer("batch-size").pipe(
  Options.withPseudoName("N"),
  Options.withDescription("Records per page read, and per atomic write (default 500)."),
  Options.withDefault(500)
)

const positive = (name: string, value: number) =>
  Number.isSafeInteger(value) && value > 0 ? Effect.succeed(value) : Effect.fail(new InvalidInput({ description: `${name} must be a positive integer` }))

/** Run `body` on the store named (or the server's), with the server's keys. */
const onStore = <A, E, R>(named: Option.Option<string>, body: Effect.Effect<A, E, R>) =>
  Effect.flatMap(resolveStore(named), (spec) =>
    Effect.provide(body, openStore(spec, true).pipe(Layer.provideMerge(cliCrypto))))

const progressInterval = Options.text("progress-interval").pipe(
  Options.withPseudoName("DURATION"),
  Options.withDescription(
    "When stderr is not a terminal, print a progress line at most this often (default \"2 seconds\"; \"0 seconds\": after every batch)."
  ),
  Options.withDefault(DEFAULT_LINE_INTERVAL)
)

const durationOf = (name: string, text: string) =>
  Option.match(Duration.decodeUnknown(text), {
    onNone: () => Effect.fail(new InvalidInput({ description: `${name} must be a duration such as "2 seconds" or "30 minutes"` })),
    onSome: (duration) => Effect.succeed(Duration.toMillis(duration))
  })

/** The progress display, for engines that take one. */
const progressFactory = (interval: string) =>
  Effect.gen(function*() {
    const output = yield* CliOutput
    const lineMillis = yield* durationOf("--progress-interval", interval)
    return (label: string, total: number) => Effect.provideService(makeProgress(label, total, lineMillis), CliOutput, output)
  })

const iso = (millis: number): string => DateTime.formatIso(DateTime.unsafeMake(millis)).replace(/\.\d{3}Z$/, "Z")

/** Rows as aligned columns; the columns listed in `right` (numbers) aligned right. */
const table = (rows: ReadonlyArray<ReadonlyArray<string>>, right: ReadonlyArray<number> = []): ReadonlyArray<string> => {
  const widths = rows.reduce<Array<number>>((w, row) => row.map((cell, i) => Math.max(w[i] ?? 0, cell.length)), [])
  return rows.map((row) =>
    row.map((cell, i) => right.includes(i) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)).join("  ").trimEnd()
  )
}

const printLines = (lines: ReadonlyArray<string>) => Effect.forEach(lines, line, { discard: true })

const needSubcommand = (name: string, choices: string) =>
  Effect.fail(new InvalidInput({ description: `${name}: choose a subcommand (${choices}); see ${name} --help` }))

// ---------------------------------------------------------------------------
// keygen

const keygen = Command.make(
  "keygen",
  {
    out: Options.text("out").pipe(
      Options.withPseudoName("FILE"),
      Options.withDescription("Write the key to this file (created with mode 0600; an existing file is never overwritten) instead of printing it."),
      Options.optional
    )
  },
  ({ out }) =>
    Effect.gen(function*() {
      const output = yield* CliOutput
      const key = yield* generateKey
      const bytes = Either.getOrThrow(decodeKey("key", Redacted.value(key)))
      const kid = yield* keyId(bytes)
      if (Option.isNone(out)) {
        yield* output.out(`${Redacted.value(key)}\n`)
        yield* output.err(`key id ${kid}: use it as RS_TOKENS_ENC_KEY (or RS_TOKENS_HASH_KEY); it is not stored anywhere\n`)
        return
      }
      yield* Effect.tryPromise({
        try: () => fs.writeFile(out.value, `${Redacted.value(key)}\n`, { flag: "wx", mode: 0o600 }),
        catch: (cause) =>
          new InvalidInput({
            description: typeof cause === "object" && cause !== null && "code" in cause && cause.code === "EEXIST"
              ? `${out.value} already exists: refusing to overwrite a key file`
              : `cannot write ${out.value} (${typeof cause === "object" && cause !== null && "code" in cause ? String(cause.code) : "error"})`
          })
      })
      yield* line(`wrote a new key (key id ${kid}) to ${out.value} (mode 0600)`)
    })
).pipe(Command.withDescription(
  "Generate a key: 32 random bytes, unpadded base64url, as RS_TOKENS_ENC_KEY, RS_TOKENS_ENC_KEYRING and " +
    "RS_TOKENS_HASH_KEY expect. Printed once on stdout (its key id on stderr), or written to --out with mode 0600."
))

// ---------------------------------------------------------------------------
// rekey

const rekeyCommand = Command.make(
  "rekey",
  {
    store,
    dryRun: Options.boolean("dry-run").pipe(Options.withDescription("Count what would be re-sealed and check every value opens; write nothing.")),
    batchSize,
    progressInterval
  },
  ({ batchSize, dryRun, progressInterval, store }) =>
    Effect.gen(function*() {
      yield* positive("--batch-size", batchSize)
      const progress = yield* progressFactory(progressInterval)
      const report = yield* onStore(
        store,
        Effect.flatMap(StoreMaintenance, (m) => Effect.zipRight(line(`rekey: ${m.description}`), rekey({ dryRun, batchSize, progress })))
      )
      const byKey = [...report.byKeyId].map(([kid, n]) => `${kid}${kid === report.activeKeyId ? " (active)" : ""}: ${formatCount(n)}`)
      const passes = report.passes === 1 ? "" : ` in ${report.passes} passes`
      yield* printLines([
        `active key: ${report.activeKeyId}`,
        `sealed values: ${formatCount(report.sealed)}${byKey.length === 0 ? "" : ` (${byKey.join(", ")})`}`,
        `${dryRun ? "would re-seal" : "re-sealed"}: ${formatCount(report.resealed)}${passes}; already under the active key: ${formatCount(report.current)}` +
          (report.rewrittenMeanwhile > 0 ? `; rewritten by a server meanwhile (left as written, looked at again): ${formatCount(report.rewrittenMeanwhile)}` : ""),
        ...(report.containersResealed > 0 ? [`${dryRun ? "would re-seal" : "re-sealed"} the store file's snapshot`] : []),
        dryRun
          ? "dry run: nothing written"
          : report.changedMeanwhile > 0
          ? `done in ${report.passes} passes; values still rewritten by servers under another key: run rekey again once every server uses the new key`
          : `done in ${report.passes} pass${report.passes === 1 ? "" : "es"}: every sealed value is under key ${report.activeKeyId}`
      ])
    })
).pipe(Command.withDescription(
  "Re-seal every sealed record (pending authorizations, refresh successor pairs, provider tokens, signing keys; " +
    "the file backend's whole snapshot) under the keyring's active key. Rotate a key: make the new key " +
    "RS_TOKENS_ENC_KEY, move the old one to RS_TOKENS_ENC_KEYRING, keep RS_TOKENS_HASH_KEY, restart the servers, " +
    "run rekey, then drop the old key. Safe while servers serve (compare-and-set on each envelope), safe to " +
    "interrupt (every value stays readable with the keyring), resumable and idempotent. Exit 1 when some values " +
    "open with no configured key."
))

// ---------------------------------------------------------------------------
// migrate

const migrateCommand = Command.make(
  "migrate",
  {
    from: Options.text("from").pipe(Options.withPseudoName("STORE"), Options.withDescription("The store to copy from (sqlite:PATH, file:PATH, redis://...).")),
    to: Options.text("to").pipe(Options.withPseudoName("STORE"), Options.withDescription("The store to copy into (created when it is a file that does not exist).")),
    force: Options.boolean("force").pipe(Options.withDescription("Write into a target that already holds records (records under the same key are replaced, the others kept).")),
    batchSize,
    progressInterval
  },
  ({ batchSize, force, from, progressInterval, to }) =>
    Effect.gen(function*() {
      yield* positive("--batch-size", batchSize)
      const progress = yield* progressFactory(progressInterval)
      const [source, target] = yield* Effect.all([resolveStore(Option.some(from)), resolveStore(Option.some(to))])
      if (displayOf(source) === displayOf(target)) {
        return yield* new InvalidInput({ description: "--from and --to name the same store" })
      }
      const report = yield* Effect.gen(function*() {
        // Both open for the whole copy: built in this scope, released when it closes.
        const sourceMaintenance = Context.get(yield* Layer.build(openStore(source, true)), StoreMaintenance)
        const targetMaintenance = Context.get(yield* Layer.build(openStore(target, false)), StoreMaintenance)
        yield* line(`migrate: ${sourceMaintenance.description} -> ${targetMaintenance.description}`)
        const crypto = yield* Crypto
        return yield* migrate(sourceMaintenance, targetMaintenance, crypto, { force, batchSize, progress })
      }).pipe(Effect.scoped, Effect.provide(cliCrypto))
      const rows = [["records", "copied", "on target"], ...RECORD_KINDS.map((kind) => [
        KIND_LABELS[kind],
        formatCount(report.copied[kind]),
        formatCount(report.found[kind])
      ])]
      yield* printLines([
        ...table(rows, [1, 2]).map((row) => `  ${row}`),
        `verified: counts match, ${formatCount(report.sampled)} records compared one by one, ${formatCount(report.sealedChecked)} sealed values open with the keyring`,
        "servers on the target must use the same RS_TOKENS_HASH_KEY (or the RS_TOKENS_ENC_KEY it derives from) and keyring"
      ])
    })
).pipe(Command.withDescription(
  "Copy every live record (grants, codes, access and refresh tokens, pending authorizations, sessions, clients, " +
    "provider tokens, signing keys) from --from to --to, as stored, keeping expiries; then check the target " +
    "(counts, a sample compared record by record, every sealed value opened). Secrets are stored only as lookup " +
    "hashes, so the hash key must stay the same: servers on the target need the same RS_TOKENS_HASH_KEY (or, " +
    "when it is unset, the same RS_TOKENS_ENC_KEY it is derived from), or no token, code, API key or client " +
    "secret matches again. Sealed values are copied unchanged and open with the same keyring. Stop the servers " +
    "of the source first. Refuses a target that holds records unless --force. Rate-limit buckets and replay-cache " +
    "entries are not copied (short-lived by design)."
))

// ---------------------------------------------------------------------------
// stats

const statsCommand = Command.make(
  "stats",
  {
    store,
    expiringWithin: Options.text("expiring-within").pipe(
      Options.withPseudoName("DURATION"),
      Options.withDescription("What \"expiring soon\" means, as a duration (default \"24 hours\")."),
      Options.withDefault("24 hours")
    ),
    top: Options.integer("top").pipe(Options.withPseudoName("N"), Options.withDescription("How many API keys to list by session count (default 10)."), Options.withDefault(10))
  },
  ({ expiringWithin, store, top }) =>
    Effect.gen(function*() {
      const within = yield* durationOf("--expiring-within", expiringWithin)
      yield* positive("--top", top)
      const report = yield* onStore(store, collectStats({ expiringWithin: within, top }))
      yield* printLines(renderStats(report))
    })
).pipe(Command.withDescription(
  "What the store holds: live records per kind and how many expire soon, sessions per API key (keys shown only " +
    "as prefixes of their lookup hashes), sealed values per key id (what rekey would re-seal), and the store's size."
))

// ---------------------------------------------------------------------------
// grants

const subject = (description: string) => Options.text("subject").pipe(Options.withPseudoName("USER"), Options.withDescription(description))

const grantsList = Command.make(
  "list",
  { store, subject: subject("The user whose grants to list.") },
  ({ store, subject }) =>
    Effect.gen(function*() {
      const grants = yield* onStore(store, grantsOf(subject))
      if (grants.length === 0) return yield* line(`no live grants for ${subject}`)
      yield* printLines(table([
        ["GRANT", "CLIENT", "SCOPES", "CREATED", "EXPIRES", "REFRESH", "ACCESS", "PROVIDERS"],
        ...grants.map(({ accessTokens, grant, providers, refreshTokens }) => [
          grant.id,
          grant.clientId,
          grant.scopes.join(" "),
          iso(grant.createdAt),
          iso(grant.expiresAt),
          String(refreshTokens),
          String(accessTokens),
          providers.join(",") || "-"
        ])
      ]))
    })
).pipe(Command.withDescription("List a user's live grants, with the refresh and access tokens and provider tokens still issued under each."))

const grantsRevoke = Command.make(
  "revoke",
  {
    store,
    id: Args.text({ name: "grant-id" }).pipe(Args.withDescription("The grant to revoke."), Args.optional),
    subject: subject("Revoke every grant of this user instead.").pipe(Options.optional)
  },
  ({ id, store, subject }) =>
    Effect.gen(function*() {
      if (Option.isSome(id) === Option.isSome(subject)) {
        return yield* new InvalidInput({ description: "grants revoke: give a grant id or --subject, not both" })
      }
      const revoked = yield* onStore(
        store,
        Option.isSome(id)
          ? revokeGrants([id.value])
          : Effect.flatMap(grantsOf(subject.pipe(Option.getOrElse(() => ""))), (grants) => revokeGrants(grants.map((g) => g.grant.id)))
      )
      if (Option.isSome(id) && revoked.length === 0) return yield* new InvalidInput({ description: `no grant ${id.value}` })
      yield* printLines([
        ...revoked.map((grantId) => `revoked grant ${grantId}`),
        `${formatCount(revoked.length)} grant(s) revoked, with every code, token and provider token issued under them`
      ])
    })
).pipe(Command.withDescription(
  "Revoke a grant (or every grant of --subject): the grant and every code, access and refresh token and provider " +
    "token issued under it are removed at once. Clients holding them must authorize again."
))

const grants = Command.make("grants", {}, () => needSubcommand("grants", "list, revoke")).pipe(
  Command.withDescription("List and revoke grants (a user's consent to a client)."),
  Command.withSubcommands([grantsList, grantsRevoke])
)

// ---------------------------------------------------------------------------
// sessions

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

const sessions = Command.make("sessions", {}, () => needSubcommand("sessions", "list, revoke")).pipe(
  Command.withDescription("List and end MCP sessions."),
  Command.withSubcommands([sessionsList, sessionsRevoke])
)

// ---------------------------------------------------------------------------

/** The whole tool. */
export const root = Command.make("mcp-oauth-store", {}, () => needSubcommand("mcp-oauth-store", "keygen, rekey, migrate, stats, grants, sessions")).pipe(
  Command.withDescription(
    "Operate the token and session stores of mcp-oauth-store: keys, re-encryption, migration between backends, " +
      "inspection. Stores and keys come from the server's settings unless --store (--from/--to) names one."
  ),
  Command.withSubcommands([keygen, rekeyCommand, migrateCommand, statsCommand, grants, sessions])
)
