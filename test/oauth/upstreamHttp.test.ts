import { FetchHttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Redacted } from "effect"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import * as UpstreamHttp from "../../src/oauth/upstreamHttp.ts"
import { UpstreamTokenClient } from "../../src/services/UpstreamTokenClient.ts"

interface Seen {
  readonly path: string
  readonly contentType: string | undefined
  readonly authorization: string | undefined
  readonly form: Record<string, string>
}

type Reply = { readonly status: number; readonly body: string; readonly contentType?: string }

/**
 * A real HTTP token endpoint on a loopback port: it records each request and
 * answers with whatever the test put under the request's path.
 */
const tokenServer = (replies: Record<string, Reply>) =>
  Effect.acquireRelease(
    Effect.async<{ readonly url: string; readonly seen: Array<Seen>; readonly close: () => void }>((resume) => {
      const seen: Array<Seen> = []
      const server = createServer((req: IncomingMessage, res: ServerResponse) => {
        let body = ""
        req.on("data", (chunk) => (body += String(chunk)))
        req.on("end", () => {
          const path = req.url ?? "/"
          seen.push({
            path,
            contentType: req.headers["content-type"],
            authorization: req.headers.authorization,
            form: Object.fromEntries(new URLSearchParams(body))
          })
          const reply = replies[path] ?? { status: 404, body: "not found", contentType: "text/plain" }
          res.writeHead(reply.status, { "content-type": reply.contentType ?? "application/json" })
          res.end(reply.body)
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, seen, close: () => server.close() }))
      })
    }),
    (server) => Effect.sync(server.close)
  )

const clientFor = (providers: Record<string, UpstreamHttp.UpstreamProvider>) =>
  Layer.build(UpstreamHttp.layer(providers).pipe(Layer.provide(FetchHttpClient.layer))).pipe(
    Effect.map((context) => Context.get(context, UpstreamTokenClient))
  )

const ok = (body: object): Reply => ({ status: 200, body: JSON.stringify(body) })

describe("UpstreamHttp: the real token endpoint client", () => {
  it.scoped("posts a form-encoded refresh_token request with HTTP Basic client auth, and parses the answer", () =>
    Effect.gen(function*() {
      const server = yield* tokenServer({
        "/token": ok({ access_token: "new-at", refresh_token: "new-rt", token_type: "Bearer", expires_in: 3600, scope: "repo user" })
      })
      const client = yield* clientFor({
        github: { tokenEndpoint: `${server.url}/token`, clientId: "our id", clientSecret: Redacted.make("s3cr:t") }
      })
      const response = yield* client.refresh("github", Redacted.make("old-rt"))
      expect(Redacted.value(response.accessToken)).toBe("new-at")
      expect(Redacted.value(response.refreshToken as Redacted.Redacted<string>)).toBe("new-rt")
      expect(response).toMatchObject({ tokenType: "Bearer", expiresIn: 3600, scopes: ["repo", "user"] })
      const [request] = server.seen
      expect(request?.contentType).toContain("application/x-www-form-urlencoded")
      expect(request?.form).toEqual({ grant_type: "refresh_token", refresh_token: "old-rt" })
      expect(Buffer.from((request?.authorization ?? "").replace("Basic ", ""), "base64").toString()).toBe("our+id:s3cr%3At")
    }))

  it.scoped("client_secret_post and none put the client in the form", () =>
    Effect.gen(function*() {
      const server = yield* tokenServer({ "/token": ok({ access_token: "at" }) })
      const client = yield* clientFor({
        post: { tokenEndpoint: `${server.url}/token`, clientId: "id-1", clientSecret: Redacted.make("pw"), authMethod: "client_secret_post" },
        public: { tokenEndpoint: `${server.url}/token`, clientId: "id-2" }
      })
      const response = yield* client.refresh("post", Redacted.make("rt"))
      expect(response.refreshToken).toBeUndefined()
      yield* client.refresh("public", Redacted.make("rt"))
      expect(server.seen.map((s) => [s.form, s.authorization])).toEqual([
        [{ grant_type: "refresh_token", refresh_token: "rt", client_id: "id-1", client_secret: "pw" }, undefined],
        [{ grant_type: "refresh_token", refresh_token: "rt", client_id: "id-2" }, undefined]
      ])
    }))

  it.scoped("failures are typed: invalid_grant, other OAuth errors, 5xx, garbage, unknown provider, unreachable", () =>
    Effect.gen(function*() {
      const server = yield* tokenServer({
        "/dead": { status: 400, body: JSON.stringify({ error: "invalid_grant", error_description: "revoked" }) },
        "/github-dead": ok({ error: "bad_refresh_token" }),
        "/client": { status: 401, body: JSON.stringify({ error: "invalid_client" }) },
        "/down": { status: 503, body: "<html>busy</html>", contentType: "text/html" },
        "/garbage": { status: 200, body: "{\"token\": 1}" },
        "/html": { status: 200, body: "<html>", contentType: "text/html" }
      })
      const provider = (path: string): UpstreamHttp.UpstreamProvider => ({ tokenEndpoint: `${server.url}${path}`, clientId: "id" })
      const client = yield* clientFor({
        dead: provider("/dead"),
        githubDead: provider("/github-dead"),
        client: provider("/client"),
        down: provider("/down"),
        garbage: provider("/garbage"),
        html: provider("/html"),
        closed: { tokenEndpoint: "http://127.0.0.1:9/token", clientId: "id" }
      })
      const reasonOf = (id: string) => Effect.map(Effect.flip(client.refresh(id, Redacted.make("rt-secret"))), (e) => e)
      expect(yield* reasonOf("dead")).toMatchObject({ reason: "InvalidGrant", error: "invalid_grant", status: 400, description: "revoked" })
      expect(yield* reasonOf("githubDead")).toMatchObject({ reason: "InvalidGrant", error: "bad_refresh_token" })
      expect(yield* reasonOf("client")).toMatchObject({ reason: "Rejected", error: "invalid_client", status: 401 })
      expect(yield* reasonOf("down")).toMatchObject({ reason: "Unavailable", status: 503 })
      expect(yield* reasonOf("garbage")).toMatchObject({ reason: "InvalidResponse" })
      expect(yield* reasonOf("html")).toMatchObject({ reason: "InvalidResponse" })
      expect(yield* reasonOf("nobody")).toMatchObject({ reason: "UnknownProvider" })
      const unreachable = yield* reasonOf("closed")
      expect(unreachable).toMatchObject({ reason: "Unavailable" })
      expect(JSON.stringify(unreachable)).not.toContain("rt-secret")
      expect(unreachable.message).not.toContain("rt-secret")
    }))
})
