import { Effect, Option } from "effect"
import { Keys } from "../../internal/keys.ts"
import { checkNextVersion, openKeySet, sealKeySet } from "../../internal/signingKeyCodec.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { SigningKeyStore } from "../../services/SigningKeyStore.ts"
import { type Db, traced } from "./db.ts"
import type { Tables } from "./tables.ts"

/**
 * The SQLite `SigningKeyStore`: one row holding the sealed key set and its
 * version. Compare-and-set is one statement: `INSERT ... ON CONFLICT DO
 * NOTHING` for the first set, `UPDATE ... WHERE version = ?` after.
 */
export const makeSigningKeyStore = (db: Db, t: Tables) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const method = "SigningKeyStore.compareAndSet"

    const service: SigningKeyStore.Service = {
      get: Effect.flatMap(
        db.all<{ readonly version: number; readonly envelope: string }>(
          "SigningKeyStore.get",
          `SELECT version, envelope FROM ${t.signingKeys} WHERE name = ?`,
          [Keys.signingKeys]
        ),
        (rows) => rows[0] === undefined ? Effect.succeed(Option.none()) : Effect.asSome(openKeySet(crypto, rows[0]))
      ),

      compareAndSet: (expectedVersion, next) =>
        Effect.gen(function*() {
          yield* checkNextVersion(expectedVersion, next)
          const sealed = yield* sealKeySet(crypto, next)
          const changes = expectedVersion === undefined
            ? yield* db.run(
              method,
              `INSERT INTO ${t.signingKeys} (name, version, envelope) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`,
              [Keys.signingKeys, sealed.version, sealed.envelope]
            )
            : yield* db.run(
              method,
              `UPDATE ${t.signingKeys} SET version = ?, envelope = ? WHERE name = ? AND version = ?`,
              [sealed.version, sealed.envelope, Keys.signingKeys, expectedVersion]
            )
          return changes === 1
        }).pipe(traced("SigningKeyStore.compareAndSet"))
    }

    return service
  })
