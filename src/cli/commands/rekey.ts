/** `rekey`: every sealed value under the active key. */
import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { StoreMaintenance } from "../../services/StoreMaintenance.ts"
import { line } from "../output.ts"
import { formatCount } from "../progress.ts"
import { rekey } from "../rekey.ts"
import { batchSize, onStore, positive, printLines, progressFactory, progressInterval, store } from "./shared.ts"

/** The `rekey` command. */
export const rekeyCommand = Command.make(
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
    "the file backend's whole snapshot) under the keyring's active key. Rotate a key: keep RS_TOKENS_HASH_KEY (set " +
    "it to the current hash key if it was derived); with several instances first add the new key to every " +
    "RS_TOKENS_ENC_KEYRING; make the new key RS_TOKENS_ENC_KEY and the old one RS_TOKENS_ENC_KEYRING, restart the " +
    "servers, run rekey, then drop the old key. Safe while servers serve (compare-and-set on each envelope), safe to " +
    "interrupt (every value stays readable with the keyring), resumable and idempotent. Exit 1 when some values " +
    "open with no configured key."
))

