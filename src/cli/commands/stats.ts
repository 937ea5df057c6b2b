/** `stats`: what a store holds. */
import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { collectStats, renderStats } from "../stats.ts"
import { durationOf, onStore, positive, printLines, store } from "./shared.ts"

/** The `stats` command. */
export const statsCommand = Command.make(
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

