/**
 * A store of exactly 10,000 live records of every kind, written through the
 * stores' own operations, and the secrets to check them afterwards: per user,
 * a grant, a refresh token rotated once (two records, the successor pair
 * sealed), an opaque access token, provider tokens of two providers (sealed),
 * an MCP session; then pending authorizations carrying an upstream PKCE
 * verifier (sealed on SQLite and Redis) and the signing key set (sealed).
 */
import { Effect, Option, Redacted } from "effect"
import { ProviderTokenStore } from "../../src/services/ProviderTokenStore.ts"
import { SessionStore } from "../../src/services/SessionStore.ts"
import { SigningKeyStore } from "../../src/services/SigningKeyStore.ts"
import { TokenStore } from "../../src/services/TokenStore.ts"
import * as F from "../contract/fixtures.ts"

/** 1,400 users × 7 records + 199 pending authorizations + 1 signing key set. */
export const USERS = 1_400
export const TRANSACTIONS = 199
export const RECORDS = USERS * 7 + TRANSACTIONS + 1

export interface Seeded {
  /** Session ids, by user index. */
  readonly sessionIds: ReadonlyArray<string>
}

const secretsOf = (i: number) => ({
  refresh: `rt-${i}-${"r".repeat(24)}`,
  access: `at-${i}-${"a".repeat(24)}`,
  apiKey: `api-key-${i}-${"k".repeat(16)}`,
  pair: { refreshToken: Redacted.make(`rt2-${i}-${"s".repeat(24)}`), accessToken: Redacted.make(`at2-${i}-${"t".repeat(24)}`) }
})

/** Write the records; `concurrency` for backends that pipeline (Redis). */
export const seedStore = (concurrency = 1) =>
  Effect.gen(function*() {
    const tokens = yield* TokenStore
    const providers = yield* ProviderTokenStore
    const sessions = yield* SessionStore
    const sessionIds = yield* Effect.forEach(Array.from({ length: USERS }, (_, i) => i), (i) =>
      Effect.gen(function*() {
        const s = secretsOf(i)
        yield* tokens.saveGrant({ ...F.grant(`g-${i}`), subject: `user-${i}` })
        yield* tokens.saveRefreshToken(s.refresh, { ...F.refreshToken(`g-${i}`), subject: `user-${i}` })
        yield* tokens.rotateRefreshToken(s.refresh, s.pair)
        yield* tokens.saveAccessToken(s.access, { ...F.accessToken(`g-${i}`), subject: `user-${i}` })
        yield* providers.storeTokens(`g-${i}`, "github", F.providerTokens(`gh-${i}`))
        yield* providers.storeTokens(`g-${i}`, "google", F.providerTokens(`go-${i}`))
        const { session } = yield* sessions.create({ apiKey: s.apiKey, subject: `user-${i}`, protocolVersion: "2025-06-18" })
        return session.id
      }), { concurrency })
    yield* Effect.forEach(Array.from({ length: TRANSACTIONS }, (_, j) => j), (j) =>
      tokens.saveTransaction({
        ...F.transaction(`tx-${j}`),
        ttl: "1 day",
        upstream: { state: `state-${j}`, codeVerifier: Redacted.make(`verifier-${j}-${"v".repeat(24)}`) }
      }), { concurrency, discard: true })
    yield* Effect.flatMap(SigningKeyStore, (keys) => keys.compareAndSet(undefined, F.keySet(1, "seed")))
    return { sessionIds } satisfies Seeded
  })

/**
 * Every token still works through the stores (open with whatever keyring the
 * caller provides): the refresh chain (a grace replay of the first token hands
 * out the sealed pair; the head is live), access tokens, both providers'
 * tokens, sessions, pending authorizations with their verifiers, the signing
 * keys. Read-only. The number of checks that failed, with a few examples.
 */
export const checkSeeded = (seeded: Seeded) =>
  Effect.gen(function*() {
    const tokens = yield* TokenStore
    const providers = yield* ProviderTokenStore
    const sessions = yield* SessionStore
    const failures: Array<string> = []
    const fail = (what: string) => failures.push(what)
    for (let i = 0; i < USERS; i++) {
      const s = secretsOf(i)
      const replay = yield* tokens.rotateRefreshToken(s.refresh, F.pair(`x-${i}`))
      if (replay._tag !== "GraceReplay" || Redacted.value(replay.pair.accessToken) !== Redacted.value(s.pair.accessToken)) {
        fail(`refresh ${i}: ${replay._tag}`)
      }
      const head = yield* tokens.getRefreshToken(Redacted.value(s.pair.refreshToken))
      if (Option.isNone(head) || head.value.rotatedAt !== undefined) fail(`refresh head ${i}`)
      if (Option.isNone(yield* tokens.getAccessToken(s.access))) fail(`access ${i}`)
      for (const [provider, label] of [["github", `gh-${i}`], ["google", `go-${i}`]] as const) {
        const read = yield* providers.getTokens(`g-${i}`, provider)
        if (Option.isNone(read) || Redacted.value(read.value.accessToken) !== `gho_provider_access_${label}_secret`) {
          fail(`provider ${provider} ${i}`)
        }
      }
      const sessionId = seeded.sessionIds[i] ?? ""
      if (Option.isNone(yield* sessions.get(sessionId))) fail(`session ${i}`)
    }
    for (let j = 0; j < TRANSACTIONS; j++) {
      const t = yield* tokens.getTransaction(`tx-${j}`)
      const verifier = Option.isSome(t) && t.value.upstream !== undefined ? Redacted.value(t.value.upstream.codeVerifier) : undefined
      if (verifier !== `verifier-${j}-${"v".repeat(24)}`) fail(`transaction ${j}`)
    }
    const keys = yield* Effect.flatMap(SigningKeyStore, (store) => store.get)
    if (Option.isNone(keys) || keys.value.keys.length !== 1) fail("signing keys")
    return { failed: failures.length, examples: failures.slice(0, 5) }
  })
