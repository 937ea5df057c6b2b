/**
 * The `/mcp` endpoint at handler level: requests built with
 * `HttpServerRequest.fromWeb`, answered by `mcpPost`/`mcpGet`/`mcpDelete` over
 * the memory stores, an ephemeral `NodeCrypto`, real signing keys and real
 * tokens issued by the engine's code flow.
 */
import { HttpServerRequest } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Option, Redacted, TestClock } from "effect"
import { readText } from "../../src/http/body.ts"
import { mcpDelete, mcpGet, mcpPost } from "../../src/http/mcp/endpoint.ts"
import * as McpServer from "../../src/http/McpServer.ts"
import * as McpTool from "../../src/http/mcp/McpTool.ts"
import { SUPPORTED_PROTOCOL_VERSIONS } from "../../src/http/mcp/session.ts"
import { greet } from "../../src/http/mcp/tools/greet.ts"
import { UPSTREAM_SCOPE } from "../../src/http/mcp/tools/upstreamUserinfo.ts"
import { TOOLS_SCOPE, whoami } from "../../src/http/mcp/tools/whoami.ts"
import { approve, authorize } from "../../src/oauth/authorize.ts"
import type { OAuthOptions } from "../../src/oauth/config.ts"
import { registerClient } from "../../src/oauth/registration.ts"
import { exchangeCode } from "../../src/oauth/tokenEndpoint.ts"
import { SessionStore } from "../../src/services/SessionStore.ts"
import { StoreError } from "../../src/services/StoreError.ts"
import { authorizationRequest, credentials, pkce, REDIRECT, stores } from "../oauth/fixtures.ts"
import { answer, captureLogs } from "../support/http.ts"

const PUBLIC_URL = "http://127.0.0.1:8787"
const MCP_URL = `${PUBLIC_URL}/mcp`
const METADATA = `${PUBLIC_URL}/.well-known/oauth-protected-resource/mcp`
const DPOP_ALGS = "ES256 ES384 ES512 RS256 RS384 RS512 PS256 PS384 PS512 EdDSA Ed25519"

/** A tool that dies: its defect must come back as an opaque internal error. */
const exploding = McpTool.make({
  name: "explode",
  description: "fails with a defect",
  run: () => Effect.dieMessage("secret detail that must not leak")
})

/** A tool that needs the upstream scope. */
const upstreamOnly = McpTool.make({
  name: "upstream_only",
  description: "needs mcp:upstream",
  scopes: [UPSTREAM_SCOPE],
  run: () => Effect.succeed(McpTool.text("ok"))
})

/** The server's services through the piece's own layer, over the memory stores. */
const services = (oauth: Omit<OAuthOptions, "issuer" | "resources" | "scopesSupported"> = {}) =>
  McpServer.layer({
    publicUrl: PUBLIC_URL,
    tools: [whoami, exploding, upstreamOnly, greet],
    jwks: { algorithm: "ES256", refreshInterval: "1 day" },
    oauth
  }).pipe(Layer.provideMerge(stores()))

const run = (oauth: Omit<OAuthOptions, "issuer" | "resources" | "scopesSupported"> = {}) =>
<A, E, R>(body: Effect.Effect<A, E, R>) =>
  Effect.scoped(Effect.provide(body, Layer.fresh(services(oauth)))) as Effect.Effect<A, unknown, never>

/** A real access token for `subject` through register, authorize, approve and the code exchange. */
const tokenFor = (subject: string, scope = `${TOOLS_SCOPE} ${UPSTREAM_SCOPE}`) =>
  Effect.gen(function*() {
    const { client } = yield* registerClient({
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      scope: `${TOOLS_SCOPE} ${UPSTREAM_SCOPE}`
    })
    const pending = yield* authorize(authorizationRequest(client.clientId, { scope, resource: MCP_URL }))
    const approved = yield* approve({ transactionId: pending.transaction.id, subject })
    const tokens = yield* exchangeCode({
      client: credentials(client.clientId),
      code: approved.redirect.params["code"] as string,
      redirectUri: REDIRECT,
      codeVerifier: pkce().verifier
    })
    return Redacted.value(tokens.accessToken)
  })

interface Call {
  readonly token?: string
  readonly session?: string
  readonly headers?: Record<string, string>
}

const request = (method: string, body: string | undefined, call: Call) =>
  HttpServerRequest.fromWeb(
    new Request(MCP_URL, {
      method,
      headers: {
        ...(body === undefined ? {} : { "content-type": "application/json", accept: "application/json, text/event-stream" }),
        ...(call.token === undefined ? {} : { authorization: `Bearer ${call.token}` }),
        ...(call.session === undefined ? {} : { "mcp-session-id": call.session }),
        ...call.headers
      },
      ...(body === undefined ? {} : { body })
    })
  )

const post = (body: unknown, call: Call = {}) => {
  const webRequest = request("POST", typeof body === "string" ? body : JSON.stringify(body), call)
  return Effect.flatMap(mcpPost({ method: "POST", headers: webRequest.headers, text: readText(webRequest) }), answer)
}
const get = (call: Call = {}) => Effect.flatMap(mcpGet(request("GET", undefined, call)), answer)
const del = (call: Call = {}) => Effect.flatMap(mcpDelete(request("DELETE", undefined, call)), answer)

const rpc = (id: number | string, method: string, params?: unknown) =>
  ({ jsonrpc: "2.0", id, method, ...(params === undefined ? {} : { params }) })

const initializeMessage = (protocolVersion = "2025-06-18") =>
  rpc(0, "initialize", { protocolVersion, capabilities: {}, clientInfo: { name: "test-client", version: "1.2.3" } })

/** Initialize a session for `token`: its id. */
const open = (token: string) =>
  Effect.gen(function*() {
    const reply = yield* post(initializeMessage(), { token })
    expect(reply.status).toBe(200)
    return reply.headers.get("mcp-session-id") as string
  })

describe("/mcp: bearer authentication", () => {
  it.effect("no token: 401 with the resource metadata challenge and no error parameter", () =>
    run()(Effect.gen(function*() {
      for (const headers of [{}, { authorization: "Basic dXNlcjpwYXNz" }, { authorization: "Bearer " }]) {
        const reply = yield* post(initializeMessage(), { headers })
        expect(reply.status).toBe(401)
        // MCP 2025-11-25: the challenge names the scopes the endpoint needs (every tool's);
        // RFC 9449 §7.1: a DPoP challenge with the accepted algorithms follows the Bearer one.
        const params = `resource_metadata="${METADATA}", scope="${TOOLS_SCOPE} ${UPSTREAM_SCOPE}"`
        expect(reply.headers.get("www-authenticate")).toBe(`Bearer ${params}, DPoP ${params}, algs="${DPOP_ALGS}"`)
        expect(reply.json.error).toBe("invalid_token")
      }
      const viaGet = yield* get()
      expect(viaGet.status).toBe(401)
      expect((yield* del()).status).toBe(401)
    })))

  it.effect("a presented but bad token: 401 with error=\"invalid_token\" (scheme case-insensitive)", () =>
    run()(Effect.gen(function*() {
      for (const authorization of ["Bearer not-a-token", "bearer a.b.c", "BEARER abc def", "Bearer <script>"]) {
        const reply = yield* post(initializeMessage(), { headers: { authorization } })
        expect(reply.status).toBe(401)
        const challenge = reply.headers.get("www-authenticate") ?? ""
        expect(challenge).toContain(`resource_metadata="${METADATA}"`)
        expect(challenge).toContain("error=\"invalid_token\"")
      }
      const token = yield* tokenFor("alice")
      const lower = yield* post(initializeMessage(), { headers: { authorization: `bearer ${token}` } })
      expect(lower.status).toBe(200)
    })))

  it.effect("an expired token is refused with invalid_token", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      yield* TestClock.adjust("2 hours")
      const reply = yield* post(initializeMessage(), { token })
      expect(reply.status).toBe(401)
      expect(reply.headers.get("www-authenticate")).toContain("error_description=\"token has expired\"")
    })))

  it.effect("opaque access tokens work too", () =>
    run({ accessTokenFormat: "opaque" })(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      const session = yield* open(token)
      const reply = yield* post(rpc(1, "tools/call", { name: "whoami" }), { token, session })
      expect(reply.json.result.structuredContent.subject).toBe("alice")
    })))

  it.effect("a foreign Origin is refused with 403; our own origin is accepted", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      const foreign = yield* post(initializeMessage(), { token, headers: { origin: "https://evil.example" } })
      expect(foreign.status).toBe(403)
      expect(foreign.json.error.code).toBe(-32000)
      const own = yield* post(initializeMessage(), { token, headers: { origin: PUBLIC_URL } })
      expect(own.status).toBe(200)
    })))
})

describe("/mcp: sessions", () => {
  it.effect("initialize creates a session in the store for the token's subject and returns Mcp-Session-Id", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      const reply = yield* post(initializeMessage("2025-06-18"), { token })
      expect(reply.status).toBe(200)
      expect(reply.headers.get("content-type")).toContain("application/json")
      expect(reply.headers.get("cache-control")).toBe("no-store")
      expect(reply.json).toMatchObject({
        jsonrpc: "2.0",
        id: 0,
        result: {
          protocolVersion: "2025-06-18",
          capabilities: { tools: {} },
          serverInfo: { name: "mcp-oauth-store", version: expect.any(String) }
        }
      })
      const id = reply.headers.get("mcp-session-id")
      expect(id).toMatch(/^[\x21-\x7e]+$/)
      const store = yield* SessionStore
      const session = Option.getOrThrow(yield* store.get(id as string))
      expect(session).toMatchObject({
        subject: "alice",
        initialized: false,
        protocolVersion: "2025-06-18",
        clientInfo: { name: "test-client", version: "1.2.3" }
      })
      expect((yield* store.listByApiKey("sub:alice")).map((s) => s.id)).toEqual([id])
    })))

  it.effect("the protocol version is negotiated: a supported one is echoed, another answered with our latest", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      for (const version of SUPPORTED_PROTOCOL_VERSIONS) {
        expect((yield* post(initializeMessage(version), { token })).json.result.protocolVersion).toBe(version)
      }
      expect((yield* post(initializeMessage("1999-01-01"), { token })).json.result.protocolVersion).toBe("2025-11-25")
      const noVersion = yield* post(rpc(0, "initialize", {}), { token })
      expect(noVersion.status).toBe(200)
      expect(noVersion.json.error.code).toBe(-32602)
      expect(noVersion.headers.get("mcp-session-id")).toBeNull()
    })))

  it.effect("notifications/initialized marks the session initialized and answers 202 with no body", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      const session = yield* open(token)
      const reply = yield* post({ jsonrpc: "2.0", method: "notifications/initialized" }, { token, session })
      expect(reply.status).toBe(202)
      expect(reply.body).toBe("")
      expect(Option.getOrThrow(yield* (yield* SessionStore).get(session)).initialized).toBe(true)
    })))

  it.effect("later requests need Mcp-Session-Id (400); an unknown one is 404", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      yield* open(token)
      const missing = yield* post(rpc(1, "ping"), { token })
      expect(missing.status).toBe(400)
      expect(missing.json).toMatchObject({ jsonrpc: "2.0", id: null, error: { code: -32000 } })
      for (const session of ["no-such-session", "bad id with spaces", "x".repeat(300)]) {
        const unknown = yield* post(rpc(1, "ping"), { token, session })
        expect(unknown.status).toBe(404)
        expect(unknown.json.error.code).toBe(-32001)
      }
    })))

  it.effect("another principal's session is refused exactly like an unknown one (404), and stays usable by its owner", () =>
    run()(Effect.gen(function*() {
      const alice = yield* tokenFor("alice")
      const bob = yield* tokenFor("bob")
      const session = yield* open(alice)
      const foreign = yield* post(rpc(1, "tools/call", { name: "whoami" }), { token: bob, session })
      const unknown = yield* post(rpc(1, "tools/call", { name: "whoami" }), { token: bob, session: "no-such-session" })
      expect(foreign.status).toBe(404)
      expect(foreign.json).toEqual(unknown.json)
      expect((yield* del({ token: bob, session })).status).toBe(404)
      const own = yield* post(rpc(2, "ping"), { token: alice, session })
      expect(own.json).toEqual({ jsonrpc: "2.0", id: 2, result: {} })
    })))

  it.effect("a session is the principal's, not the token's: a second token of the same subject uses it", () =>
    run()(Effect.gen(function*() {
      const first = yield* tokenFor("alice")
      const second = yield* tokenFor("alice")
      const session = yield* open(first)
      expect((yield* post(rpc(1, "ping"), { token: second, session })).status).toBe(200)
    })))

  it.effect("an idle session expires (404) after the store's idle TTL", () =>
    run()(Effect.gen(function*() {
      const session = yield* open(yield* tokenFor("alice"))
      yield* TestClock.adjust("25 hours")
      const reply = yield* post(rpc(1, "ping"), { token: yield* tokenFor("alice"), session })
      expect(reply.status).toBe(404)
    })))

  it.effect("the sixth session of a principal evicts its least recently used one, logged without secrets", () =>
    Effect.gen(function*() {
      const { captured, lines } = captureLogs()
      yield* captured(run()(Effect.gen(function*() {
        const token = yield* tokenFor("alice")
        const ids: Array<string> = []
        for (let i = 0; i < 6; i++) {
          ids.push(yield* open(token))
          yield* TestClock.adjust("2 minutes")
        }
        expect((yield* post(rpc(1, "ping"), { token, session: ids[0] as string })).status).toBe(404)
        expect((yield* post(rpc(1, "ping"), { token, session: ids[5] as string })).status).toBe(200)
        const evicted = lines.filter((line) => line.includes("mcp session evicted"))
        expect(evicted).toHaveLength(1)
        expect(evicted[0]).toContain("PerKeyLimit")
        for (const line of lines) {
          expect(line).not.toContain(token)
          for (const id of ids) expect(line).not.toContain(id)
        }
      })))
    }))

  it.effect("initialize must come alone and without a session id", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      const session = yield* open(token)
      const again = yield* post(initializeMessage(), { token, session })
      expect(again.status).toBe(400)
      expect(again.json.error.code).toBe(-32600)
      const batched = yield* post([initializeMessage(), rpc(1, "ping")], { token })
      expect(batched.status).toBe(400)
      expect(batched.json.error.code).toBe(-32600)
    })))

  it.effect("DELETE ends the session (204); afterwards it is 404, and DELETE without a session id is 400", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      const session = yield* open(token)
      const ended = yield* del({ token, session })
      expect(ended.status).toBe(204)
      expect(Option.isNone(yield* (yield* SessionStore).get(session))).toBe(true)
      expect((yield* post(rpc(1, "ping"), { token, session })).status).toBe(404)
      expect((yield* del({ token, session })).status).toBe(404)
      expect((yield* del({ token })).status).toBe(400)
    })))

  it.effect("GET answers 405 with Allow: POST, DELETE (no server-initiated stream)", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      const reply = yield* get({ token, headers: { accept: "text/event-stream" } })
      expect(reply.status).toBe(405)
      expect(reply.headers.get("allow")).toBe("POST, DELETE")
    })))
})

describe("/mcp: methods and tools", () => {
  it.effect("ping, tools/list, unknown methods", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      const session = yield* open(token)
      expect((yield* post(rpc(1, "ping"), { token, session })).json).toEqual({ jsonrpc: "2.0", id: 1, result: {} })
      const list = yield* post(rpc("list", "tools/list"), { token, session })
      expect(list.json.id).toBe("list")
      expect(list.json.result.tools.map((t: { name: string }) => t.name)).toEqual(["whoami", "explode", "upstream_only", "greet"])
      expect(list.json.result.tools[0]).toMatchObject({
        name: "whoami",
        description: expect.any(String),
        inputSchema: { type: "object" },
        outputSchema: { type: "object" }
      })
      const unknown = yield* post(rpc(3, "resources/list"), { token, session })
      expect(unknown.status).toBe(200)
      expect(unknown.json.error.code).toBe(-32601)
    })))

  it.effect("whoami returns subject, scopes, client and session as text JSON and structuredContent", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice", TOOLS_SCOPE)
      const session = yield* open(token)
      const reply = yield* post(rpc(7, "tools/call", { name: "whoami", arguments: {} }), { token, session })
      expect(reply.status).toBe(200)
      const result = reply.json.result
      expect(result.structuredContent).toMatchObject({ subject: "alice", scopes: [TOOLS_SCOPE], sessionId: session, protocolVersion: "2025-06-18" })
      expect(result.structuredContent.clientId).toEqual(expect.any(String))
      expect(JSON.parse(result.content[0].text)).toEqual(result.structuredContent)
      expect(result.isError).toBeUndefined()
    })))

  it.effect("a missing scope is HTTP 403 insufficient_scope with scope= for step-up, and the tool does not run", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice", UPSTREAM_SCOPE)
      const session = yield* open(token)
      const reply = yield* post(rpc(1, "tools/call", { name: "whoami" }), { token, session })
      expect(reply.status).toBe(403)
      expect(reply.json).toMatchObject({ error: "insufficient_scope", error_description: `missing scope: ${TOOLS_SCOPE}` })
      const challenge = reply.headers.get("www-authenticate") ?? ""
      expect(challenge).toMatch(/^Bearer /)
      expect(challenge).toContain(`resource_metadata="${METADATA}"`)
      expect(challenge).toContain("error=\"insufficient_scope\"")
      expect(challenge).toContain(`scope="${TOOLS_SCOPE} ${UPSTREAM_SCOPE}"`)
      const batch = yield* post([rpc(1, "ping"), rpc(2, "tools/call", { name: "whoami" })], { token, session })
      expect(batch.status).toBe(403)
      expect((yield* post(rpc(3, "tools/call", { name: "upstream_only" }), { token, session })).json.result.content[0].text)
        .toBe("ok")
    })))

  it.effect("tools/call: unknown tool and bad arguments are -32602; a defect is an opaque -32603", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      const session = yield* open(token)
      const unknown = yield* post(rpc(1, "tools/call", { name: "nope" }), { token, session })
      expect(unknown.json.error).toEqual({ code: -32602, message: "Unknown tool: nope" })
      const noName = yield* post(rpc(2, "tools/call", {}), { token, session })
      expect(noName.json.error.code).toBe(-32602)
      const badArgs = yield* post(rpc(3, "tools/call", { name: "whoami", arguments: [1] }), { token, session })
      expect(badArgs.json.error.code).toBe(-32602)
      const defect = yield* post(rpc(4, "tools/call", { name: "explode" }), { token, session })
      expect(defect.status).toBe(200)
      expect(defect.json.error).toEqual({ code: -32603, message: "Internal error" })
      expect(defect.body).not.toContain("secret detail")
    })))
})

/** A service a tool needs, given to the server's layer. */
class Greeting extends Context.Tag("test/Greeting")<Greeting, string>() {}

const greeting = McpTool.make({
  name: "greeting",
  description: "answers with the Greeting service the server's layer was given",
  run: () => Effect.map(Greeting, McpTool.text)
})

/** The server with `greeting`, its `Greeting` given to the layer only (`Layer.provide`, not merged into what requests see). */
const greetingServices = (word: string) =>
  McpServer.layer({ publicUrl: PUBLIC_URL, tools: [whoami, upstreamOnly, greeting], jwks: { algorithm: "ES256", refreshInterval: "1 day" } }).pipe(
    Layer.provide(Layer.succeed(Greeting, word)),
    Layer.provideMerge(stores())
  )

describe("/mcp: tools with requirements", () => {
  it.effect("a tool runs with the services the server's layer was given, whatever the request's context holds", () =>
    Effect.scoped(Effect.provide(
      Effect.gen(function*() {
        const token = yield* tokenFor("alice", TOOLS_SCOPE)
        const session = yield* open(token)
        const call = () => post(rpc(1, "tools/call", { name: "greeting" }), { token, session })
        expect((yield* call()).json.result.content[0].text).toBe("hello")
        // A request context with another `Greeting` does not change what the tool was given.
        expect((yield* Effect.provideService(call(), Greeting, "bonjour")).json.result.content[0].text).toBe("hello")
      }),
      Layer.fresh(greetingServices("hello"))
    )) as Effect.Effect<void, unknown, never>)

  it.effect("when the request's context holds the same services (the server's own runtime), the call runs in it", () =>
    Effect.scoped(Effect.provide(
      Effect.gen(function*() {
        const token = yield* tokenFor("alice", TOOLS_SCOPE)
        const session = yield* open(token)
        const reply = yield* post(rpc(1, "tools/call", { name: "greeting" }), { token, session })
        expect(reply.json.result.content[0].text).toBe("hi")
        const who = yield* post(rpc(2, "tools/call", { name: "whoami" }), { token, session })
        expect(who.json.result.structuredContent.subject).toBe("alice")
      }),
      Layer.fresh(greetingServices("hi").pipe(Layer.provideMerge(Layer.succeed(Greeting, "hi"))))
    )) as Effect.Effect<void, unknown, never>)
})

describe("/mcp: JSON-RPC framing", () => {
  it.effect("malformed JSON is -32700 (400)", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      const reply = yield* post("{\"jsonrpc\": \"2.0\", ", { token })
      expect(reply.status).toBe(400)
      expect(reply.json).toEqual({ jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } })
    })))

  it.effect("an invalid message is -32600 (400), with its id when it has one", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      const session = yield* open(token)
      const noVersion = yield* post({ id: 5, method: "ping" }, { token, session })
      expect(noVersion.status).toBe(400)
      expect(noVersion.json).toMatchObject({ id: 5, error: { code: -32600 } })
      const nullId = yield* post({ jsonrpc: "2.0", id: null, method: "ping" }, { token, session })
      expect(nullId.json).toMatchObject({ id: null, error: { code: -32600 } })
      expect((yield* post(42, { token, session })).json.error.code).toBe(-32600)
      expect((yield* post([], { token, session })).json.error.code).toBe(-32600)
    })))

  it.effect("a batch is answered with an array of the requests' replies, in order", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      const session = yield* open(token)
      const reply = yield* post([
        rpc(1, "ping"),
        { jsonrpc: "2.0", method: "notifications/initialized" },
        rpc(2, "tools/call", { name: "whoami" }),
        { jsonrpc: "2.0", id: 3 },
        rpc(4, "nope")
      ], { token, session })
      expect(reply.status).toBe(200)
      expect(reply.json.map((r: { id: unknown }) => r.id)).toEqual([1, 2, 3, 4])
      expect(reply.json[1].result.structuredContent.subject).toBe("alice")
      expect(reply.json[2].error.code).toBe(-32600)
      expect(reply.json[3].error.code).toBe(-32601)
      expect(Option.getOrThrow(yield* (yield* SessionStore).get(session)).initialized).toBe(true)
    })))

  it.effect("notifications and responses alone are 202 with no body", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      const session = yield* open(token)
      const notes = yield* post([{ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 1 } }, {
        jsonrpc: "2.0",
        id: "s1",
        result: {}
      }], { token, session })
      expect(notes.status).toBe(202)
      expect(notes.body).toBe("")
    })))

  it.effect("content type, Accept and MCP-Protocol-Version are checked", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      const session = yield* open(token)
      const form = yield* post(rpc(1, "ping"), { token, session, headers: { "content-type": "text/plain" } })
      expect(form.status).toBe(415)
      expect(form.json.error.code).toBe(-32000)
      const html = yield* post(rpc(1, "ping"), { token, session, headers: { accept: "text/html" } })
      expect(html.status).toBe(406)
      const refused = yield* post(rpc(1, "ping"), { token, session, headers: { accept: "application/json;q=0, text/event-stream" } })
      expect(refused.status).toBe(406)
      for (const accept of ["application/json", "*/*", "application/json, text/event-stream"]) {
        expect((yield* post(rpc(1, "ping"), { token, session, headers: { accept } })).status).toBe(200)
      }
      const version = yield* post(rpc(1, "ping"), { token, session, headers: { "mcp-protocol-version": "1999-01-01" } })
      expect(version.status).toBe(400)
      const current = yield* post(rpc(1, "ping"), { token, session, headers: { "mcp-protocol-version": "2025-06-18" } })
      expect(current.status).toBe(200)
    })))

  it.effect("a body over the server's limit is 413", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      const session = yield* open(token)
      const big = JSON.stringify(rpc(1, "tools/call", { name: "whoami", arguments: { pad: "x".repeat(2000) } }))
      const reply = yield* post(big, { token, session, headers: { "content-length": String(big.length) } }).pipe(
        HttpServerRequest.withMaxBodySize(Option.some(1024))
      )
      expect(reply.status).toBe(413)
      expect(reply.json.error.code).toBe(-32000)
      const small = yield* post(rpc(2, "ping"), { token, session }).pipe(HttpServerRequest.withMaxBodySize(Option.some(1024)))
      expect(small.status).toBe(200)
    })))

  it.effect("a store outage is 503 temporarily_unavailable with Retry-After and no detail (fake SessionStore)", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      const down = (method: string) => Effect.fail(new StoreError({ reason: "Unavailable", method, description: "redis at 10.0.0.1 refused" }))
      const outage = Layer.succeed(SessionStore, {
        create: () => down("SessionStore.create"),
        get: () => down("SessionStore.get"),
        update: () => down("SessionStore.update"),
        delete: () => down("SessionStore.delete"),
        listByApiKey: () => down("SessionStore.listByApiKey")
      })
      for (const attempt of [post(initializeMessage(), { token }), post(rpc(1, "ping"), { token, session: "s" }), del({ token, session: "s" })]) {
        const reply = yield* Effect.provide(attempt, outage)
        expect(reply.status).toBe(503)
        expect(reply.json.error).toBe("temporarily_unavailable")
        expect(reply.headers.get("retry-after")).toBe("5")
        expect(reply.body).not.toContain("10.0.0.1")
      }
    })))
})

const ENVELOPE = {
  "io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientCapabilities": { elicitation: { form: {} } },
  "io.modelcontextprotocol/clientInfo": { name: "test-client", version: "1.2.3" }
}

/** A 2026-07-28 request: the envelope in `_meta`, the headers repeating the body. */
const modern = (method: string, params: Record<string, unknown> = {}, meta: Record<string, unknown> = ENVELOPE) => ({
  body: rpc(9, method, { ...params, _meta: meta }),
  headers: {
    "mcp-protocol-version": "2026-07-28",
    "mcp-method": method,
    ...(typeof params["name"] === "string" ? { "mcp-name": params["name"] } : {})
  } as Record<string, string>
})

const postModern = (message: ReturnType<typeof modern>, call: Call = {}) =>
  post(message.body, { ...call, headers: { ...message.headers, ...call.headers } })

describe("/mcp: protocol revision 2026-07-28 (stateless)", () => {
  it.effect("server/discover: versions, capabilities, serverInfo in _meta, caching fields; no session", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      const reply = yield* postModern(modern("server/discover"), { token })
      expect(reply.status).toBe(200)
      expect(reply.headers.get("mcp-session-id")).toBeNull()
      expect(reply.json).toEqual({
        jsonrpc: "2.0",
        id: 9,
        result: {
          supportedVersions: ["2026-07-28"],
          capabilities: { tools: { listChanged: true } },
          resultType: "complete",
          ttlMs: 0,
          cacheScope: "private",
          _meta: { "io.modelcontextprotocol/serverInfo": { name: "mcp-oauth-store", version: expect.any(String) } }
        }
      })
    })))

  it.effect("tools/list and tools/call answer with resultType; whoami knows the revision and has no session", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      const list = yield* postModern(modern("tools/list"), { token })
      expect(list.json.result).toMatchObject({ resultType: "complete", ttlMs: 0, cacheScope: "private" })
      expect(list.json.result.tools.map((t: { name: string }) => t.name)).toEqual(["whoami", "explode", "upstream_only", "greet"])
      const call = yield* postModern(modern("tools/call", { name: "whoami", arguments: {} }), { token })
      expect(call.json.result).toMatchObject({
        resultType: "complete",
        structuredContent: { subject: "alice", protocolVersion: "2026-07-28" },
        _meta: { "io.modelcontextprotocol/serverInfo": { name: "mcp-oauth-store" } }
      })
      expect(call.json.result.structuredContent.sessionId).toBeUndefined()
    })))

  it.effect("the envelope is checked: missing keys and bad shapes are -32602 (400) naming the key", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      const noCapabilities = yield* postModern(modern("tools/list", {}, { "io.modelcontextprotocol/protocolVersion": "2026-07-28" }), { token })
      expect(noCapabilities.status).toBe(400)
      expect(noCapabilities.json.error).toMatchObject({
        code: -32602,
        data: { envelope: { key: "io.modelcontextprotocol/clientCapabilities", problem: "missing" } }
      })
      const badInfo = yield* postModern(modern("tools/list", {}, { ...ENVELOPE, "io.modelcontextprotocol/clientInfo": { name: 7 } }), { token })
      expect(badInfo.json.error.data.envelope.key).toBe("io.modelcontextprotocol/clientInfo.name")
      // A modern header without an envelope in the body.
      const bare = yield* post(rpc(1, "tools/list"), { token, headers: { "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list" } })
      expect(bare.status).toBe(400)
      expect(bare.json.error).toMatchObject({ code: -32602, data: { envelope: { missing: ["_meta"] } } })
    })))

  it.effect("headers must repeat the body: mismatches and absences are -32020 (400); an unknown version -32022", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      const call = modern("tools/call", { name: "whoami" })
      const wrongMethod = yield* postModern(call, { token, headers: { "mcp-method": "tools/list" } })
      expect(wrongMethod.status).toBe(400)
      expect(wrongMethod.json.error).toMatchObject({ code: -32020, data: { mismatch: { header: "tools/list", body: "tools/call" } } })
      const wrongVersion = yield* postModern(call, { token, headers: { "mcp-protocol-version": "2025-11-25" } })
      expect(wrongVersion.json.error.code).toBe(-32020)
      const { "mcp-name": _name, ...withoutName } = call.headers
      const noName = yield* post(call.body, { token, headers: withoutName })
      expect(noName.json.error).toMatchObject({ code: -32020, data: { mismatch: { header: "(missing)", body: "whoami" } } })
      const otherName = yield* postModern(call, { token, headers: { "mcp-name": "greet" } })
      expect(otherName.json.error.code).toBe(-32020)
      // A name that is not plain ASCII travels base64-encoded: the sentinel is decoded before comparing.
      const encoded = yield* postModern(call, { token, headers: { "mcp-name": `=?base64?${btoa("whoami")}?=` } })
      expect(encoded.json.result.resultType).toBe("complete")
      const broken = yield* postModern(call, { token, headers: { "mcp-name": "=?base64?***?=" } })
      expect(broken.json.error.code).toBe(-32020)
      const future = modern("tools/list", {}, { ...ENVELOPE, "io.modelcontextprotocol/protocolVersion": "2027-01-01" })
      const unsupported = yield* postModern(future, { token, headers: { "mcp-protocol-version": "2027-01-01" } })
      expect(unsupported.status).toBe(400)
      expect(unsupported.json.error).toMatchObject({ code: -32022, data: { supported: ["2026-07-28"], requested: "2027-01-01" } })
    })))

  it.effect("methods of the 2025 revisions are gone (404 -32601); notifications are 202; batches with a claim are refused", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      for (const method of ["ping", "initialize", "resources/list", "logging/setLevel"]) {
        const reply = yield* postModern(modern(method), { token })
        expect(reply.status).toBe(404)
        expect(reply.json.error).toEqual({ code: -32601, message: "Method not found" })
      }
      const note = yield* post({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 1, _meta: ENVELOPE } }, { token })
      expect(note.status).toBe(202)
      const batch = yield* post([modern("tools/list").body], { token })
      expect(batch.status).toBe(400)
      expect(batch.json.error.code).toBe(-32600)
    })))

  it.effect("a multi-round tool: input_required with sealed state, then complete; state bound to caller and tool, and expiring", () =>
    run()(Effect.gen(function*() {
      const alice = yield* tokenFor("alice")
      const first = yield* postModern(modern("tools/call", { name: "greet" }), { token: alice })
      expect(first.json.result).toMatchObject({
        resultType: "input_required",
        inputRequests: { name: { method: "elicitation/create", params: { mode: "form", message: "What is your name?" } } },
        requestState: expect.any(String)
      })
      const state = first.json.result.requestState as string
      const answers = { inputResponses: { name: { action: "accept", content: { name: "Ada" } } } }
      const done = yield* postModern(modern("tools/call", { name: "greet", ...answers, requestState: state }), { token: alice })
      expect(done.json.result).toMatchObject({ resultType: "complete", content: [{ type: "text", text: "Hello, Ada!" }] })

      const refused = { code: -32602, message: "Invalid or expired requestState", data: { reason: "invalid_request_state" } }
      // Another subject presenting alice's state.
      const bob = yield* tokenFor("bob")
      expect((yield* postModern(modern("tools/call", { name: "greet", ...answers, requestState: state }), { token: bob })).json.error).toEqual(refused)
      // The state of one tool presented to another.
      expect((yield* postModern(modern("tools/call", { name: "whoami", requestState: state }), { token: alice })).json.error).toEqual(refused)
      // A declined answer asks again.
      const declined = { inputResponses: { name: { action: "decline" } } }
      const again = yield* postModern(modern("tools/call", { name: "greet", ...declined, requestState: state }), { token: alice })
      expect(again.json.result.resultType).toBe("input_required")
      // Past its lifetime (10 minutes) the state is refused, before the tool runs.
      yield* TestClock.adjust("11 minutes")
      const fresh = yield* tokenFor("alice")
      expect((yield* postModern(modern("tools/call", { name: "greet", ...answers, requestState: state }), { token: fresh })).json.error).toEqual(refused)
    })))

  it.effect("an input request the client did not declare the capability for is -32021 (400)", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      const noElicitation = { ...ENVELOPE, "io.modelcontextprotocol/clientCapabilities": {} }
      const reply = yield* postModern(modern("tools/call", { name: "greet" }, noElicitation), { token })
      expect(reply.status).toBe(400)
      expect(reply.json.error).toMatchObject({ code: -32021, data: { requiredCapabilities: { elicitation: { form: {} } } } })
    })))

  it.effect("tool scopes apply in this era too: 403 insufficient_scope before the tool runs", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice", UPSTREAM_SCOPE)
      const reply = yield* postModern(modern("tools/call", { name: "whoami" }), { token })
      expect(reply.status).toBe(403)
      expect(reply.headers.get("www-authenticate")).toContain("error=\"insufficient_scope\"")
    })))
})

describe("/mcp: DNS rebinding (Host and Origin)", () => {
  it.effect("loopback aliases of our origin are accepted; a foreign Host or Origin is 403", () =>
    run()(Effect.gen(function*() {
      const token = yield* tokenFor("alice")
      for (const origin of ["http://localhost:8787", "http://127.0.0.1:8787", "http://[::1]:8787"]) {
        expect((yield* post(initializeMessage(), { token, headers: { origin } })).status).toBe(200)
      }
      for (const host of ["127.0.0.1:8787", "localhost:8787"]) {
        expect((yield* post(initializeMessage(), { token, headers: { host } })).status).toBe(200)
      }
      for (const headers of [{ host: "evil.example" }, { host: "127.0.0.1:9999" }, { origin: "http://localhost:9999" }, { origin: "null" }]) {
        const reply = yield* post(initializeMessage(), { token, headers })
        expect(reply.status).toBe(403)
        expect(reply.json.error.code).toBe(-32000)
      }
    })))
})
