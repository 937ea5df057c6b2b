/**
 * `POST /token` on the Node fast path answers exactly as the platform's
 * router does: the same status, headers and body for a refresh, for
 * `invalid_grant`, `invalid_client` (with its Basic challenge), a wrong
 * content type, a body over the limit (declared or chunked), a parameter
 * sent twice, and DPoP's `use_dpop_nonce` with its `DPoP-Nonce`; a preflight
 * still goes through the platform. The fast path is the one `toHandler`
 * serves (node:http straight into the handler); the platform path is the
 * server's `HttpApp` through `@effect/platform-node`, over the same stores
 * (one memory store shared by both, as two instances share a store), each
 * on its own `node:http` server.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, ManagedRuntime } from "effect"
import { createServer, request as httpRequest, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { NodeCrypto } from "../../src/exports/crypto/node.ts"
import * as McpServer from "../../src/http/McpServer.ts"
import { toHandler } from "../../src/http/node.ts"
import * as MemoryStore from "../../src/layers/memory/index.ts"
import { dpopKey, signProof } from "../support/dpop.ts"
import { grantTokens, registerPublicClient } from "../support/oauthFlow.ts"

const MAX_BODY = 2048

interface Answer {
  readonly status: number
  readonly headers: Record<string, string | Array<string> | undefined>
  readonly body: string
}

/** One request with node:http (a chunked body when `chunked`), its answer with every header. */
const call = (base: string, init: {
  readonly method?: string
  readonly path?: string
  readonly headers?: Record<string, string>
  readonly body?: string
  readonly chunked?: boolean
}): Promise<Answer> =>
  new Promise((resolve, reject) => {
    const url = new URL(init.path ?? "/token", base)
    const body = init.body ?? ""
    const req = httpRequest({
      host: url.hostname,
      port: url.port,
      path: url.pathname + url.search,
      method: init.method ?? "POST",
      headers: { ...(init.chunked === true ? {} : { "content-length": String(Buffer.byteLength(body)) }), ...init.headers }
    }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (chunk: Buffer) => chunks.push(chunk))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }))
      res.on("error", reject)
    })
    req.on("error", reject)
    if (init.chunked === true) {
      // Several chunks, no Content-Length: read as it comes.
      for (let at = 0; at < body.length; at += 1000) req.write(body.slice(at, at + 1000))
      req.end()
    } else req.end(body)
  })

/** The headers an answer is compared by: all but those of the connection and the clock. */
const comparable = (answer: Answer) => {
  const { date: _date, connection: _connection, "keep-alive": _keepAlive, ...rest } = answer.headers
  return { status: answer.status, headers: rest, body: answer.body }
}

const form = (params: Record<string, string>) => new URLSearchParams(params).toString()
const FORM = { "content-type": "application/x-www-form-urlencoded" }

/** A line of the request log (its duration left out), or a note. */
type Line = Readonly<Record<string, string | number>>

const listen = (server: Server): Promise<string> =>
  new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)))

const closeServer = (server: Server): Promise<void> =>
  new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })

describe("POST /token: the Node fast path answers as the platform path does", () => {
  const fastServer = createServer()
  const platformServer = createServer()
  let fast = ""
  let platform = ""
  let clientId = ""
  const fastLines: Array<Line> = []
  const platformLines: Array<Line> = []
  const closers: Array<() => Promise<void>> = []

  beforeAll(async () => {
    fast = await listen(fastServer)
    platform = await listen(platformServer)
    // The stores, built once and shared by both servers (as two instances share one store).
    const stores = ManagedRuntime.make(MemoryStore.layer({ sweepInterval: "1 day" }).pipe(Layer.provideMerge(NodeCrypto.layerEphemeral)))
    const shared = Layer.succeedContext(await stores.runPromise(Effect.context<McpServer.McpServerRequirements>()))
    const options = (lines: Array<Line>): McpServer.McpServerOptions => ({
      requestLog: {
        record: (entry) => Effect.sync(() => void lines.push({ message: "request", method: entry.method, path: entry.path, status: entry.status })),
        note: (message, annotations) => Effect.sync(() => void lines.push({ message, ...annotations }))
      },
      publicUrl: fast,
      signIn: { autoApprove: "alice" },
      scopes: ["mcp:tools"],
      maxBodyBytes: MAX_BODY,
      oauth: { dpop: { requireNonce: true } },
      allowedHosts: [new URL(platform).host]
    })
    const platformRuntime = ManagedRuntime.make(McpServer.layer(options(platformLines)).pipe(Layer.provideMerge(shared)))
    const platformHandler = await platformRuntime.runPromise(NodeHttpServer.makeHandler(McpServer.httpApp))
    platformServer.on("request", platformHandler)
    const mounted = toHandler(options(fastLines), shared)
    fastServer.on("request", mounted.handler)
    closers.push(() => closeServer(fastServer), () => closeServer(platformServer), mounted.dispose, () => platformRuntime.dispose(), () => stores.dispose())
    clientId = await registerPublicClient(platform)
  }, 60_000)

  afterAll(async () => {
    for (const close of closers) await close()
  })

  /** The same request to both; their answers, after checking that both logged the same lines for it. */
  const both = async (init: Parameters<typeof call>[1]) => {
    const [fastFrom, platformFrom] = [fastLines.length, platformLines.length]
    const answers = [await call(fast, init), await call(platform, init)] as const
    expect(fastLines.slice(fastFrom)).toEqual(platformLines.slice(platformFrom))
    return answers
  }

  it("a refresh: 200, the same headers (CORS, no-store), a token response of the same shape", async () => {
    const [first, second] = [await grantTokens(platform, clientId), await grantTokens(platform, clientId)]
    const refresh = (token: string) => ({ headers: FORM, body: form({ grant_type: "refresh_token", refresh_token: token, client_id: clientId }) })
    const [fastFrom, platformFrom] = [fastLines.length, platformLines.length]
    const onFast = await call(fast, refresh(first.refresh_token))
    const onPlatform = await call(platform, refresh(second.refresh_token))
    // One note of the tokens issued (never a token), then the request line; the same on both paths.
    const logged = (grantId: unknown) => [
      { message: "tokens issued", grant_type: "refresh_token", client_id: clientId, grant_id: grantId, token_type: "Bearer" },
      { message: "request", method: "POST", path: "/token", status: 200 }
    ]
    expect(fastLines.slice(fastFrom)).toEqual(logged(fastLines[fastFrom]?.["grant_id"]))
    expect(platformLines.slice(platformFrom)).toEqual(logged(platformLines[platformFrom]?.["grant_id"]))
    expect(fastLines[fastFrom]?.["grant_id"]).toEqual(expect.any(String))
    expect(onFast.status).toBe(200)
    expect(onPlatform.status).toBe(200)
    const { "content-length": fastLength, ...fastHeaders } = comparable(onFast).headers
    const { "content-length": platformLength, ...platformHeaders } = comparable(onPlatform).headers
    expect(fastHeaders).toEqual(platformHeaders)
    expect(fastHeaders).toMatchObject({
      "access-control-allow-origin": "*",
      "cache-control": "no-store",
      pragma: "no-cache",
      "content-type": "application/json"
    })
    expect(Number(fastLength)).toBe(Buffer.byteLength(onFast.body))
    expect(Number(platformLength)).toBe(Buffer.byteLength(onPlatform.body))
    const a = JSON.parse(onFast.body) as Record<string, unknown>
    const b = JSON.parse(onPlatform.body) as Record<string, unknown>
    expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort())
    expect(a).toMatchObject({ token_type: "Bearer", scope: "mcp:tools" })
    expect(b).toMatchObject({ token_type: "Bearer", scope: "mcp:tools" })
    // Each path's new refresh token works on the other: one engine, one store.
    expect((await call(platform, refresh(String(a["refresh_token"])))).status).toBe(200)
    expect((await call(fast, refresh(String(b["refresh_token"])))).status).toBe(200)
    // The presented token was rotated: a second use (past the grace pair of another successor) is refused.
    expect((await call(fast, refresh(first.refresh_token))).status).toBe(400)
  })

  it("refusals: invalid_grant, invalid_client (Basic challenge), wrong content type, a parameter twice, no grant type", async () => {
    const cases: Array<Parameters<typeof call>[1]> = [
      { headers: FORM, body: form({ grant_type: "refresh_token", refresh_token: "no-such-token", client_id: clientId }) },
      { headers: FORM, body: form({ grant_type: "refresh_token", refresh_token: "no-such-token" }) },
      { headers: { ...FORM, authorization: `Basic ${Buffer.from("nobody:wrong").toString("base64")}` }, body: form({ grant_type: "refresh_token", refresh_token: "x" }) },
      { headers: { ...FORM, authorization: "Basic !!!" }, body: form({ grant_type: "refresh_token" }) },
      { headers: { "content-type": "application/json" }, body: JSON.stringify({ grant_type: "refresh_token" }) },
      { headers: FORM, body: "grant_type=refresh_token&grant_type=refresh_token" },
      { headers: FORM, body: form({ client_id: clientId }) },
      { headers: FORM, body: form({ grant_type: "password", client_id: clientId }) },
      { path: "/token?x=1", headers: FORM, body: form({ grant_type: "refresh_token", refresh_token: "nope", client_id: clientId }) }
    ]
    for (const init of cases) {
      const [onFast, onPlatform] = await both(init)
      expect(onFast.status).toBeGreaterThanOrEqual(400)
      expect(comparable(onFast)).toEqual(comparable(onPlatform))
    }
    const [basic] = await both(cases[2] as Parameters<typeof call>[1])
    expect(basic.status).toBe(401)
    expect(basic.headers["www-authenticate"]).toMatch(/^Basic/)
    expect(JSON.parse(basic.body)).toMatchObject({ error: "invalid_client" })
  })

  it("a body over the limit: 413, declared or chunked, and a wrong content type over the limit stays a 400", async () => {
    const large = form({ grant_type: "refresh_token", refresh_token: "x".repeat(MAX_BODY), client_id: clientId })
    for (const init of [
      { headers: FORM, body: large },
      { headers: FORM, body: large, chunked: true },
      { headers: { "content-type": "text/plain" }, body: large }
    ]) {
      const [onFast, onPlatform] = await both(init)
      expect(comparable(onFast)).toEqual(comparable(onPlatform))
    }
    const [tooLarge] = await both({ headers: FORM, body: large, chunked: true })
    expect(tooLarge.status).toBe(413)
    expect(JSON.parse(tooLarge.body)).toMatchObject({ error: "invalid_request" })
  })

  it("DPoP with nonces required: a proof without one gets use_dpop_nonce and a DPoP-Nonce, the same on both paths", async () => {
    const key = await dpopKey()
    const proof = () => signProof(key, { htm: "POST", htu: `${fast}/token`, iat: Math.floor(Date.now() / 1000) })
    const body = form({ grant_type: "refresh_token", refresh_token: "no-such-token", client_id: clientId })
    const onFast = await call(fast, { headers: { ...FORM, dpop: await proof() }, body })
    const onPlatform = await call(platform, { headers: { ...FORM, dpop: await proof() }, body })
    expect(onFast.status).toBe(400)
    expect(JSON.parse(onFast.body)).toMatchObject({ error: "use_dpop_nonce" })
    expect(onFast.headers["dpop-nonce"]).toEqual(expect.any(String))
    expect(comparable(onFast)).toEqual(comparable(onPlatform))
  })

  it("a preflight of /token and every other route still go through the platform", async () => {
    const [preflight, platformPreflight] = await both({ method: "OPTIONS", headers: { origin: "https://app.example", "access-control-request-method": "POST" } })
    expect(preflight.status).toBe(204)
    expect(preflight.headers["access-control-allow-methods"]).toBe("GET, POST")
    expect(comparable(preflight)).toEqual(comparable(platformPreflight))
    const [metadata, platformMetadata] = await both({ method: "GET", path: "/.well-known/oauth-authorization-server" })
    expect(metadata.status).toBe(200)
    expect(comparable(metadata)).toEqual(comparable(platformMetadata))
    const [notFound] = await both({ method: "GET", path: "/token" })
    expect(notFound.status).toBe(404)
  })
})
