/**
 * The engine with Client ID Metadata Documents: a client id URL is fetched
 * (from a real https document server on loopback, through the SSRF-safe Node
 * fetcher), validated, cached in the ClientStore for its Cache-Control
 * lifetime (TestClock moves it), and goes through the whole code flow; bad
 * documents and unreachable servers refuse that client only.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, Option, Redacted, TestClock } from "effect"
import * as NodeClientMetadata from "../../src/layers/clientMetadata/node.ts"
import { approve, authorize } from "../../src/oauth/authorize.ts"
import {
  clientIdUrlProblem,
  clientMetadataDocumentsSupported,
  documentTtl,
  findClient,
  validateClientMetadataDocument
} from "../../src/oauth/clientMetadataDocument.ts"
import { exchangeCode, refreshTokens } from "../../src/oauth/tokenEndpoint.ts"
import { ClientStore } from "../../src/services/ClientStore.ts"
import { type Certificate, type DocumentServer, makeCertificate, removeCertificate, startDocumentServer } from "../support/documentServer.ts"
import { authorizationRequest, credentials, engine, pkce, registerPublic, using } from "./fixtures.ts"

let certificate: Certificate
let server: DocumentServer

beforeAll(async () => {
  certificate = makeCertificate()
  server = await startDocumentServer(certificate)
})
afterAll(async () => {
  await server.close()
  removeCertificate(certificate)
})

const NATIVE_REDIRECT = "http://127.0.0.1/callback"

/** A document for `path` on the test server, with overrides. */
const documentAt = (path: string, overrides: Record<string, unknown> = {}) => ({
  client_id: `${server.origin}${path}`,
  client_name: "Document client",
  redirect_uris: [NATIVE_REDIRECT],
  token_endpoint_auth_method: "none",
  ...overrides
})

/** The engine with the Node fetcher (loopback allowed, the test certificate trusted). */
const withDocuments = <A, E, R>(body: Effect.Effect<A, E, R>) =>
  Effect.scoped(
    Effect.provide(
      body,
      Layer.fresh(Layer.merge(engine(), NodeClientMetadata.layer({ allowLoopback: true, ca: certificate.cert })))
    )
  ) as Effect.Effect<A, unknown, never>

const hits = (path: string) => server.requests.filter((p) => p === path).length

describe("client id URLs and document lifetimes", () => {
  it("a client id URL is https with a path, no dot segments, fragment or user info, in its normal form", () => {
    expect(clientIdUrlProblem("https://app.example/client.json")).toBeUndefined()
    expect(clientIdUrlProblem("https://app.example:8443/oauth/client?v=2")).toBeUndefined()
    for (
      const bad of [
        "http://app.example/client.json",
        "https://app.example",
        "https://app.example/",
        "https://app.example/a/../client.json",
        "https://app.example/./client.json",
        "https://app.example/%2e%2e/client.json",
        "https://app.example/client.json#x",
        "https://u:p@app.example/client.json",
        "https://APP.example/client.json",
        "https://app.example:443/client.json"
      ]
    ) expect(clientIdUrlProblem(bad), bad).toBeDefined()
  })

  it("the cache lifetime follows Cache-Control, between 60 seconds and 1 hour", () => {
    const seconds = (header: string | undefined) => Duration.toSeconds(documentTtl(header))
    expect(seconds("max-age=600")).toBe(600)
    expect(seconds("public, max-age=120, must-revalidate")).toBe(120)
    expect(seconds("s-maxage=900")).toBe(900)
    expect(seconds("max-age=86400")).toBe(3600)
    expect(seconds("max-age=5")).toBe(60)
    expect(seconds("no-store")).toBe(60)
    expect(seconds("no-cache, max-age=600")).toBe(60)
    expect(seconds(undefined)).toBe(300)
    expect(seconds("private")).toBe(300)
  })

  it.effect("validation: client_id is the URL exactly; a public client; no secret; valid redirect URIs", () =>
    Effect.gen(function*() {
      const url = "https://app.example/client.json"
      const ok = { client_id: url, redirect_uris: ["cursor://app/cb", NATIVE_REDIRECT] }
      const metadata = yield* validateClientMetadataDocument(url, ok, undefined)
      expect(metadata).toMatchObject({
        token_endpoint_auth_method: "none",
        grant_types: ["authorization_code", "refresh_token"],
        redirect_uris: ["cursor://app/cb", NATIVE_REDIRECT]
      })
      for (
        const bad of [
          "not an object",
          [ok],
          { ...ok, client_id: `${url}/` },
          { ...ok, client_id: "https://evil.example/client.json" },
          { ...ok, client_id: undefined },
          { ...ok, token_endpoint_auth_method: "client_secret_basic" },
          { ...ok, token_endpoint_auth_method: "client_secret_post" },
          { ...ok, token_endpoint_auth_method: "private_key_jwt" },
          { ...ok, client_secret: "shh" },
          { ...ok, redirect_uris: [] },
          { ...ok, redirect_uris: undefined },
          { ...ok, redirect_uris: ["javascript:alert(1)"] },
          { ...ok, redirect_uris: ["http://app.example/cb"] },
          { ...ok, grant_types: ["client_credentials"] }
        ]
      ) {
        const error = yield* Effect.flip(validateClientMetadataDocument(url, bad, undefined))
        expect(error._tag).toBe("InvalidClient")
      }
    }))
})

describe("the engine with metadata documents", () => {
  it.effect("without a ClientMetadataDocuments service a URL client id is an unknown client, and support is not advertised", () =>
    using()(Effect.gen(function*() {
      expect(yield* clientMetadataDocumentsSupported).toBe(false)
      expect(Option.isNone(yield* findClient(`${server.origin}/anything.json`))).toBe(true)
      const error = yield* Effect.flip(authorize(authorizationRequest(`${server.origin}/anything.json`, { redirectUri: NATIVE_REDIRECT })))
      expect(error._tag).toBe("InvalidClient")
    })))

  it.effect("a document client goes through the whole flow: authorize, approve, exchange, refresh (fetched again once the cache expired)", () =>
    withDocuments(Effect.gen(function*() {
      expect(yield* clientMetadataDocumentsSupported).toBe(true)
      const path = "/flow.json"
      server.serveJson(path, documentAt(path), { "cache-control": "max-age=120" })
      const clientId = `${server.origin}${path}`
      const redirectUri = "http://127.0.0.1:49152/callback"
      const pending = yield* authorize(authorizationRequest(clientId, { redirectUri }))
      expect(pending.client.clientId).toBe(clientId)
      expect(pending.client.metadata.client_name).toBe("Document client")
      expect(pending.client.expiresAt).toBe(120_000)
      expect(hits(path)).toBe(1)

      const approved = yield* approve({ transactionId: pending.transaction.id, subject: "alice" })
      const tokens = yield* exchangeCode({
        client: credentials(clientId),
        code: approved.redirect.params["code"] ?? "",
        redirectUri,
        codeVerifier: pkce().verifier
      })
      expect(hits(path)).toBe(1)
      expect(tokens.refreshToken).toBeDefined()

      // Past the document's max-age the cached copy is gone; the refresh fetches it again.
      yield* TestClock.adjust("121 seconds")
      expect(Option.isNone(yield* (yield* ClientStore).get(clientId))).toBe(true)
      const refreshed = yield* refreshTokens({ client: credentials(clientId), refreshToken: Redacted.value(tokens.refreshToken ?? Redacted.make("")) })
      expect(refreshed.refreshToken).toBeDefined()
      expect(hits(path)).toBe(2)
    })))

  it.effect("the cached copy is served until it expires: no second fetch within its lifetime", () =>
    withDocuments(Effect.gen(function*() {
      const path = "/cached.json"
      server.serveJson(path, documentAt(path), { "cache-control": "max-age=600" })
      const clientId = `${server.origin}${path}`
      for (let i = 0; i < 3; i++) yield* findClient(clientId)
      expect(hits(path)).toBe(1)
      yield* TestClock.adjust("599 seconds")
      yield* findClient(clientId)
      expect(hits(path)).toBe(1)
      yield* TestClock.adjust("1 second")
      yield* findClient(clientId)
      expect(hits(path)).toBe(2)
    })))

  it.effect("a bad or unreachable document refuses that client only, caches nothing, and other clients keep working", () =>
    withDocuments(Effect.gen(function*() {
      const registered = yield* registerPublic()
      const cases: Record<string, () => void> = {
        "/mismatch.json": () => server.serveJson("/mismatch.json", documentAt("/other.json")),
        "/secret.json": () => server.serveJson("/secret.json", documentAt("/secret.json", { token_endpoint_auth_method: "client_secret_basic" })),
        "/redirects.json": () => server.serveJson("/redirects.json", documentAt("/redirects.json", { redirect_uris: ["https://app.example/cb#x"] })),
        "/html.json": () => server.route("/html.json", (_, r) => r.writeHead(200, { "content-type": "text/html" }).end("<html>")),
        "/missing.json": () => undefined
      }
      for (const [path, setUp] of Object.entries(cases)) {
        setUp()
        const clientId = `${server.origin}${path}`
        const error = yield* Effect.flip(authorize(authorizationRequest(clientId, { redirectUri: NATIVE_REDIRECT })))
        expect(error._tag, path).toBe("InvalidClient")
        expect(Option.isNone(yield* (yield* ClientStore).get(clientId))).toBe(true)
      }
      const closed = yield* Effect.promise(() => startDocumentServer(certificate))
      yield* Effect.promise(() => closed.close())
      const unreachable = yield* Effect.flip(authorize(authorizationRequest(`${closed.origin}/client.json`, { redirectUri: NATIVE_REDIRECT })))
      expect(unreachable._tag).toBe("InvalidClient")
      expect(unreachable._tag === "InvalidClient" && unreachable.description).toContain("could not be fetched")

      const pending = yield* authorize(authorizationRequest(registered.clientId))
      expect(pending.client.clientId).toBe(registered.clientId)
    })))

  it.effect("the redirect URI must be one the document lists (a loopback one in any port)", () =>
    withDocuments(Effect.gen(function*() {
      const path = "/redirect.json"
      server.serveJson(path, documentAt(path))
      const clientId = `${server.origin}${path}`
      const error = yield* Effect.flip(authorize(authorizationRequest(clientId, { redirectUri: "https://evil.example/cb" })))
      expect(error._tag).toBe("InvalidRequest")
      yield* authorize(authorizationRequest(clientId, { redirectUri: "http://127.0.0.1:61000/callback" }))
    })))
})
