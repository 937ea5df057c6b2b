/**
 * The load bench's baseline: a plain `node:http` server doing only the JWT
 * work of our two measured endpoints, with `jose`, in its own process
 * (started by bench/load.ts; not a bench module, never imported).
 *
 * - `POST /mcp`: verifies the bearer JWT against our server's published JWKS
 *   (`createLocalJWKSet` over the document fetched once by the bench, then
 *   `jwtVerify` with the same algorithm pin, issuer and audience), through
 *   the same kind of cache of verified tokens our server has (keyed by the
 *   token, `exp` checked on every hit: the fair comparison, since ours does
 *   not re-verify a token it has seen either); checks that a
 *   `Mcp-Session-Id` is present (no lookup) or, in the 2026-07-28 era, that
 *   the body carries the `_meta` envelope; and answers a JSON-RPC
 *   `tools/call` result of the same shape as our `whoami`.
 * - `POST /token`: parses the form (`grant_type=refresh_token`, a
 *   `refresh_token`, a `client_id`), signs a new RS256 access token with its
 *   own key and answers a token response of the same shape as ours, with a
 *   fresh random refresh token.
 *
 * What it does not do: no store of any kind (no grant, no session, no client
 * lookup), no refresh-token rotation or replay detection, no scope checks, no
 * request logging. It is the floor: HTTP plus the JWT operation.
 *
 * Environment: `BASELINE_JWKS` (our JWKS document, JSON), `BASELINE_ISSUER`,
 * `BASELINE_AUDIENCE`, `BASELINE_ALG` (default RS256). It listens on a free
 * loopback port and writes `{"port":N}` as one line to stdout.
 */
import { createLocalJWKSet, exportJWK, generateKeyPair, type JSONWebKeySet, type JWTPayload, jwtVerify, SignJWT } from "jose"
import { randomBytes, randomUUID } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"

const required = (name: string): string => {
  const value = process.env[name]
  if (value === undefined || value.length === 0) throw new Error(`${name} is required`)
  return value
}

const issuer = required("BASELINE_ISSUER")
const audience = required("BASELINE_AUDIENCE")
const alg = process.env["BASELINE_ALG"] ?? "RS256"
const jwks = createLocalJWKSet(JSON.parse(required("BASELINE_JWKS")) as JSONWebKeySet)
const ACCESS_TOKEN_TTL = 3600
const MAX_BODY = 1024 * 1024

const { privateKey, publicKey } = await generateKeyPair(alg)
const kid = (await exportJWK(publicKey)).n?.slice(0, 16) ?? "baseline"

const readBody = (request: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let size = 0
    request.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY) reject(new Error("too large"))
      else chunks.push(chunk)
    })
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    request.on("error", reject)
  })

const send = (response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
  const text = JSON.stringify(body)
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
    ...headers
  })
  response.end(text)
}

/** Verified tokens by their text, each with its claims (bounded like our server's cache). */
const verified = new Map<string, JWTPayload>()
const MAX_VERIFIED = 10_000

/** The token's claims: from the cache while it has not expired, else verified (and cached). */
const claimsOf = async (token: string): Promise<JWTPayload> => {
  const cached = verified.get(token)
  if (cached !== undefined && (cached.exp ?? 0) * 1000 > Date.now()) return cached
  const { payload } = await jwtVerify(token, jwks, { algorithms: [alg], issuer, audience })
  if (verified.size >= MAX_VERIFIED) verified.delete(verified.keys().next().value as string)
  verified.set(token, payload)
  return payload
}

const mcp = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
  const authorization = request.headers.authorization ?? ""
  const sessionId = request.headers["mcp-session-id"]
  if (!authorization.startsWith("Bearer ")) return send(response, 401, { error: "invalid_token" })
  let payload
  try {
    payload = await claimsOf(authorization.slice(7))
  } catch {
    return send(response, 401, { error: "invalid_token" })
  }
  const message = JSON.parse(await readBody(request)) as {
    id?: unknown
    method?: unknown
    params?: { name?: unknown; _meta?: Record<string, unknown> }
  }
  const modern = message.params?._meta?.["io.modelcontextprotocol/protocolVersion"] !== undefined
  if (typeof sessionId !== "string" && !modern) return send(response, 400, { error: "missing session" })
  if (message.method !== "tools/call" || message.params?.name !== "whoami") {
    return send(response, 200, { jsonrpc: "2.0", id: message.id ?? null, error: { code: -32601, message: "Method not found" } })
  }
  const who = { subject: payload.sub, scopes: String(payload["scope"] ?? "").split(" "), ...(modern ? {} : { session: sessionId }) }
  send(response, 200, {
    jsonrpc: "2.0",
    id: message.id ?? null,
    result: { content: [{ type: "text", text: JSON.stringify(who) }], structuredContent: who }
  })
}

const token = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
  if (request.headers["content-type"]?.startsWith("application/x-www-form-urlencoded") !== true) {
    return send(response, 400, { error: "invalid_request" })
  }
  const form = new URLSearchParams(await readBody(request))
  const refreshToken = form.get("refresh_token")
  const clientId = form.get("client_id")
  if (form.get("grant_type") !== "refresh_token" || !refreshToken || !clientId) {
    return send(response, 400, { error: "invalid_request" })
  }
  const now = Math.floor(Date.now() / 1000)
  const scope = "mcp:tools"
  const accessToken = await new SignJWT({ client_id: clientId, scope, gid: randomUUID(), jti: randomUUID() })
    .setProtectedHeader({ alg, kid, typ: "JWT" })
    .setIssuer(issuer)
    .setSubject("bench")
    .setAudience(audience)
    .setIssuedAt(now)
    .setExpirationTime(now + ACCESS_TOKEN_TTL)
    .sign(privateKey)
  send(response, 200, {
    access_token: accessToken,
    token_type: "Bearer",
    expires_in: ACCESS_TOKEN_TTL,
    refresh_token: randomBytes(32).toString("base64url"),
    scope
  }, { pragma: "no-cache" })
}

const server = createServer((request, response) => {
  const path = (request.url ?? "/").split("?")[0]
  const handler = request.method === "POST" && path === "/mcp" ? mcp : request.method === "POST" && path === "/token" ? token : undefined
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

const stop = () => server.close(() => process.exit(0))
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
