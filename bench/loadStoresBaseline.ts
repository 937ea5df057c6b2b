/**
 * The load bench's second baseline: the same store and engine work as our
 * server's measured endpoints, on a plain `node:http` server, with no HTTP
 * framework and no endpoint code: the engine functions called directly
 * through one `runPromise` per request, over the same memory stores,
 * `NodeCrypto` and signing keys as `npm start` with `STORE=memory`. Beside
 * the jose-only baseline, it splits our cost into "store and engine" and
 * "HTTP stack and endpoint" (started by bench/load.ts; never imported).
 *
 * - `POST /mcp`: `verifyAccessToken` (the same verified-token cache), the
 *   session read when the request names one (2025), and a `whoami` result.
 * - `POST /token`: `refreshTokens` (client check, atomic rotation, a new
 *   signed access token) and the token response.
 * - `GET /bench-setup?refresh=N`: what the bench needs to drive it: a client,
 *   an access token, a session, and N fresh refresh tokens (each its own
 *   grant), issued through the engine's own code flow.
 *
 * It writes `{"port":N}` as one line to stdout; no request log.
 */
import { Effect, Layer, Logger, ManagedRuntime, Option, Redacted } from "effect"
import { createHash, randomBytes } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import * as NodeCrypto from "../src/layers/crypto/node.ts"
import * as MemoryStore from "../src/layers/memory/index.ts"
import { verifyAccessToken } from "../src/oauth/accessTokens.ts"
import { approve, authorize } from "../src/oauth/authorize.ts"
import { OAuthConfig } from "../src/oauth/config.ts"
import * as StoredJwks from "../src/oauth/jwks.ts"
import { registerClient } from "../src/oauth/registration.ts"
import { exchangeCode, refreshTokens, tokenResponse } from "../src/oauth/tokenEndpoint.ts"
import { SessionStore } from "../src/services/SessionStore.ts"

const ISSUER = "http://127.0.0.1:8787"
const RESOURCE = `${ISSUER}/mcp`
const REDIRECT = "http://127.0.0.1:9/callback"

const runtime = ManagedRuntime.make(
  Layer.mergeAll(OAuthConfig.layer({ issuer: ISSUER, resources: [RESOURCE, ISSUER], scopesSupported: ["mcp:tools"] }), StoredJwks.layer()).pipe(
    Layer.provideMerge(MemoryStore.layer()),
    Layer.provideMerge(NodeCrypto.layerEphemeral),
    // stdout carries only the port line; no logging (as the jose baseline).
    Layer.provideMerge(Logger.remove(Logger.defaultLogger))
  )
)

const verifier = randomBytes(48).toString("base64url")
const challenge = createHash("sha256").update(verifier).digest("base64url")

/** A fresh grant for `clientId` through the engine's code flow: its tokens. */
const grant = (clientId: string) =>
  Effect.gen(function*() {
    const pending = yield* authorize({
      responseType: "code",
      clientId,
      redirectUri: REDIRECT,
      scope: "mcp:tools",
      state: "bench",
      codeChallenge: challenge,
      codeChallengeMethod: "S256",
      resource: RESOURCE
    })
    const approved = yield* approve({ transactionId: pending.transaction.id, subject: "bench" })
    return yield* exchangeCode({
      client: { clientId, method: "none" },
      code: String(approved.redirect.params["code"]),
      redirectUri: REDIRECT,
      codeVerifier: verifier
    })
  })

const clientId = await runtime.runPromise(
  Effect.map(
    registerClient({
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      scope: "mcp:tools"
    }),
    (registered) => registered.client.clientId
  )
)

const readBody = (request: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    request.on("error", reject)
  })

const send = (response: ServerResponse, status: number, body: unknown): void => {
  const text = JSON.stringify(body)
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), "cache-control": "no-store" })
  response.end(text)
}

const mcp = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
  const token = (request.headers.authorization ?? "").slice(7)
  const sessionId = request.headers["mcp-session-id"]
  const message = JSON.parse(await readBody(request)) as { id?: unknown }
  const who = await runtime.runPromise(
    Effect.flatMap(verifyAccessToken(token), (verified) =>
      typeof sessionId === "string"
        ? Effect.map((SessionStore.pipe(Effect.flatMap((sessions) => sessions.get(sessionId)))), (session) => ({
          subject: verified.subject,
          scopes: verified.scopes,
          session: Option.map(session, (s) => s.id).pipe(Option.getOrNull)
        }))
        : Effect.succeed({ subject: verified.subject, scopes: verified.scopes }))
  )
  send(response, 200, { jsonrpc: "2.0", id: message.id ?? null, result: { content: [{ type: "text", text: JSON.stringify(who) }], structuredContent: who } })
}

const token = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
  const form = new URLSearchParams(await readBody(request))
  const issued = await runtime.runPromise(
    refreshTokens({ client: { clientId: form.get("client_id") ?? "", method: "none" }, refreshToken: form.get("refresh_token") ?? undefined })
  )
  send(response, 200, tokenResponse(issued))
}

const setup = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
  const count = Number(new URL(request.url ?? "/", ISSUER).searchParams.get("refresh") ?? "0")
  const first = await runtime.runPromise(grant(clientId))
  const session = await runtime.runPromise(
    Effect.flatMap(SessionStore, (sessions) => sessions.create({ apiKey: "sub:bench", subject: "bench", initialized: true }))
  )
  const refreshTokens = await runtime.runPromise(Effect.forEach(Array.from({ length: count }), () => Effect.map(grant(clientId), (t) => t.refreshToken)))
  send(response, 200, {
    clientId,
    accessToken: Redacted.value(first.accessToken),
    sessionId: session.session.id,
    refreshTokens: refreshTokens.map((t) => t === undefined ? "" : Redacted.value(t))
  })
}

const server = createServer((request, response) => {
  const path = (request.url ?? "/").split("?")[0]
  const handler = request.method === "POST" && path === "/mcp"
    ? mcp
    : request.method === "POST" && path === "/token"
    ? token
    : request.method === "GET" && path === "/bench-setup"
    ? setup
    : undefined
  if (handler === undefined) return send(response, 404, { error: "not_found" })
  handler(request, response).catch(() => {
    if (!response.headersSent) send(response, 400, { error: "invalid_request" })
  })
})

server.keepAliveTimeout = 60_000
server.listen(0, "127.0.0.1", () => {
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  process.stdout.write(`${JSON.stringify({ port })}\n`)
})

const stop = () => server.close(() => void runtime.dispose().then(() => process.exit(0)))
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
