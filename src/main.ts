/**
 * `npm start`. Until the HTTP server lands (issue 6), this checks the runtime's
 * configuration and exercises the configured stores once: a bad
 * `RS_TOKENS_ENC_KEY` stops it with one line naming the variable.
 */
import { Config, Effect, Layer, Logger, LogLevel, Option } from "effect"
import * as MemoryStore from "./layers/memory/index.ts"
import { NodeCrypto } from "./layers/crypto/index.ts"
import { SessionStore } from "./services/SessionStore.ts"
import { TokenStore } from "./services/TokenStore.ts"

const CryptoLive = Layer.unwrapEffect(
  Effect.map(Config.option(Config.string("RS_TOKENS_ENC_KEY")), (key) =>
    Option.isSome(key)
      ? NodeCrypto.layerConfig
      : Layer.effectDiscard(Effect.logWarning("RS_TOKENS_ENC_KEY is not set: using a key that lives only as long as this process"))
        .pipe(Layer.provideMerge(NodeCrypto.layerEphemeral)))
)

const selfCheck = Effect.gen(function*() {
  const tokens = yield* TokenStore
  const sessions = yield* SessionStore
  const code = `self-check-${Math.random().toString(36).slice(2)}`
  yield* tokens.saveCode(code, {
    grantId: "self-check",
    clientId: "self-check",
    subject: "self-check",
    redirectUri: "http://127.0.0.1/callback",
    codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    codeChallengeMethod: "S256",
    scopes: []
  })
  const first = yield* tokens.consumeCode(code)
  const replay = yield* tokens.consumeCode(code)
  const { session } = yield* sessions.create({ apiKey: "self-check" })
  yield* Effect.logInfo("store runtime ready").pipe(
    Effect.annotateLogs({ store: "memory", consume: first._tag, replay: replay._tag, session: session.initialized ? "initialized" : "created" })
  )
})

const main = selfCheck.pipe(
  Effect.provide(MemoryStore.layer().pipe(Layer.provide(CryptoLive))),
  Effect.provide(Logger.logFmt),
  Logger.withMinimumLogLevel(LogLevel.Info)
)

Effect.runPromiseExit(main).then((exit) => {
  if (exit._tag === "Failure") {
    process.stderr.write(`startup failed: ${exit.cause._tag === "Fail" ? String(exit.cause.error) : "unexpected error"}\n`)
    process.exitCode = 1
  }
})
