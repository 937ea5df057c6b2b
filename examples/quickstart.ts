import { Effect, Layer, Option } from "effect"
import { SessionStore, TokenStore } from "mcp-oauth-store"
import { NodeCrypto } from "mcp-oauth-store/crypto/node"
import { MemoryStore } from "mcp-oauth-store/memory"

// Code written against the services: no backend named here.
const program = Effect.gen(function*() {
  const tokens = yield* TokenStore
  const sessions = yield* SessionStore

  // An authorization code is single-use: the second exchange is a replay.
  yield* tokens.saveGrant({ id: "grant-1", clientId: "client-1", subject: "alice", scopes: ["read"] })
  yield* tokens.saveCode("the-code", {
    grantId: "grant-1",
    clientId: "client-1",
    subject: "alice",
    redirectUri: "https://app.example/callback",
    codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    codeChallengeMethod: "S256",
    scopes: ["read"]
  })
  const first = yield* tokens.consumeCode("the-code")
  const second = yield* tokens.consumeCode("the-code")
  if (second._tag === "Replayed") yield* tokens.revokeGrant(second.grantId)

  // Sessions: at most 5 per API key; a sixth evicts the least recently used.
  const { session } = yield* sessions.create({ apiKey: "alice-api-key", protocolVersion: "2025-06-18" })
  const found = yield* sessions.get(session.id)

  return { first: first._tag, second: second._tag, sessionFound: Option.isSome(found) }
})

// The backend is chosen once, here: swap this line for another backend's layer.
const StoresLive = MemoryStore.layer().pipe(Layer.provide(NodeCrypto.layerEphemeral))

Effect.runPromise(Effect.provide(program, StoresLive)).then((result) => {
  process.stdout.write(`${JSON.stringify(result)}\n`)
})
