/** `keygen`: a new key, printed once or written to a file with mode 0600. */
import { Command, Options } from "@effect/cli"
import { Effect, Either, Option, Redacted } from "effect"
import { promises as fs } from "node:fs"
import { decodeKey, generateKey, keyId } from "../../layers/crypto/keyring.ts"
import { InvalidInput } from "../errors.ts"
import { CliOutput, line } from "../output.ts"

/** The `keygen` command. */
export const keygen = Command.make(
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

