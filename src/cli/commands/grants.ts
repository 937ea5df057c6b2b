/** `grants list` and `grants revoke`. */
import { Args, Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { InvalidInput } from "../errors.ts"
import { grantsOf, revokeGrants } from "../inspect.ts"
import { line } from "../output.ts"
import { formatCount } from "../progress.ts"
import { iso, needSubcommand, onStore, printLines, store, table } from "./shared.ts"

/** `--subject`: a user, with what it selects. */
export const subject = (description: string) => Options.text("subject").pipe(Options.withPseudoName("USER"), Options.withDescription(description))

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

/** The `grants` command and its subcommands. */
export const grants = Command.make("grants", {}, () => needSubcommand("grants", "list, revoke")).pipe(
  Command.withDescription("List and revoke grants (a user's consent to a client)."),
  Command.withSubcommands([grantsList, grantsRevoke])
)

