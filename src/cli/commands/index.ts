/**
 * The commands of `mcp-oauth-store` (@effect/cli): keygen, rekey, migrate,
 * stats, grants, sessions. Each opens the store it is given (`--store`, or
 * the one the server's settings choose) with the server's keys, does its work
 * through `StoreMaintenance` and the stores, and prints a result on stdout
 * (progress goes to stderr).
 */
import { Command } from "@effect/cli"
import { grants } from "./grants.ts"
import { keygen } from "./keygen.ts"
import { migrateCommand } from "./migrate.ts"
import { rekeyCommand } from "./rekey.ts"
import { sessions } from "./sessions.ts"
import { needSubcommand } from "./shared.ts"
import { statsCommand } from "./stats.ts"

/** The whole tool: every command. */
export const root = Command.make("mcp-oauth-store", {}, () => needSubcommand("mcp-oauth-store", "keygen, rekey, migrate, stats, grants, sessions")).pipe(
  Command.withDescription(
    "Operate the token and session stores of mcp-oauth-store: keys, re-encryption, migration between backends, " +
      "inspection. Stores and keys come from the server's settings unless --store (--from/--to) names one."
  ),
  Command.withSubcommands([keygen, rekeyCommand, migrateCommand, statsCommand, grants, sessions])
)

