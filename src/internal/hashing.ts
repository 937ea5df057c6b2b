import { Effect } from "effect"
import type { Crypto } from "../services/Crypto.ts"

/**
 * `f` of the lookup hash of `secret`: computed in place when the `Crypto`
 * has a synchronous `hashSync` (node:crypto), so a store's hot path takes no
 * runtime step for it; otherwise after `crypto.hash`. Call it where the
 * effect is being run (inside `tracedWithNow`, `withNow`, `Effect.suspend`),
 * so the hash is computed then, not when the effect is built.
 */
export const withHash = <A, E, R>(
  crypto: Crypto.Service,
  secret: string,
  f: (hash: string) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> => crypto.hashSync === undefined ? Effect.flatMap(crypto.hash(secret), f) : f(crypto.hashSync(secret))
