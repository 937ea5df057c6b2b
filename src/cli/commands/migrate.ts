/** `migrate`: every live record from one backend to another, then the check. */
import { Command, Options } from "@effect/cli"
import { Context, Effect, Layer, Option } from "effect"
import { RECORD_KINDS } from "../../schema/storedRecord.ts"
import { Crypto } from "../../services/Crypto.ts"
import { StoreMaintenance } from "../../services/StoreMaintenance.ts"
import { InvalidInput } from "../errors.ts"
import { migrate } from "../migrate.ts"
import { line } from "../output.ts"
import { formatCount } from "../progress.ts"
import { KIND_LABELS } from "../stats.ts"
import { cliCrypto, displayOf, openStore, resolveStore } from "../stores.ts"
import { batchSize, positive, printLines, progressFactory, progressInterval, table } from "./shared.ts"

/** The `migrate` command. */
export const migrateCommand = Command.make(
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

