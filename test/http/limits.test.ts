/**
 * The limits on anonymous callers, at the handlers (web `Request`s, the
 * client's address given as the fetch host would give it, `PeerAddress`),
 * over the memory stores with `TestClock`: `/register` paced per address and
 * its document bounded; `GET /authorize` paced per address, its parameters
 * bounded, and its pending authorizations within a budget that a flood cannot
 * use to evict a consent page a user has open (reproduced without the
 * budget); sign-in failures limited per address, per user and per
 * authorization, across authorizations, with a 429 page that never tells
 * whether a key was right; what is logged (never a key). Then the piece as a
 * `fetch` handler given the peer's address, and the memory store's growth
 * under 1,000 oversized registrations.
 */
import { HttpServerRequest } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Logger, LogLevel, Option, Redacted, Scope, TestClock } from "effect"
import { NodeCrypto } from "../../src/exports/crypto/node.ts"
import { authorizeGet, authorizePost } from "../../src/http/authorize.ts"
import { registerHandler } from "../../src/http/backChannel.ts"
import { PeerAddress, type TrustProxy } from "../../src/http/clientAddress.ts"
import { ScopeDescriptions } from "../../src/http/consent/page.ts"
import { signInLayer } from "../../src/http/consent/signIn.ts"
import type { LimitsOptions } from "../../src/http/limits.ts"
import * as McpServer from "../../src/http/McpServer.ts"
import * as MemoryStore from "../../src/layers/memory/index.ts"
import { RateLimiter } from "../../src/services/RateLimiter.ts"
import { RawStorage } from "../../src/services/RawStorage.ts"
import { TokenStore } from "../../src/services/TokenStore.ts"
import { authorizeQuery, CLIENT_STATE, engine, ISSUER, publicClientMetadata, registerPublic } from "../oauth/fixtures.ts"
import { type Answer, answer, captureLogs } from "../support/http.ts"

const ALICE_KEY = "alice-key-0123456789abcdef"
const WRONG_KEY = "wrong-key-0123456789abcdef"

const { captured, lines: logLines } = captureLogs()

interface Setup {
  readonly limits?: LimitsOptions
  readonly trustProxy?: TrustProxy
  readonly maxTransactions?: number
  readonly autoApprove?: string
}

/** Run a test body over fresh memory stores, the engine, sign-in and the limits; logs captured. */
const using = (setup: Setup = {}) =>
<A, E, R>(body: Effect.Effect<A, E, R>) => {
  const signIn = signInLayer({
    apiKeys: [{ user: "alice", apiKey: Redacted.make(ALICE_KEY) }],
    ...(setup.autoApprove === undefined ? {} : { autoApprove: setup.autoApprove })
  })
  const layer = Layer.merge(signIn, Layer.succeed(ScopeDescriptions, {})).pipe(
    Layer.provideMerge(engine({
      ...(setup.limits === undefined ? {} : { limits: setup.limits }),
      ...(setup.trustProxy === undefined ? {} : { trustProxy: setup.trustProxy }),
      ...(setup.maxTransactions === undefined ? {} : { stores: { tokens: { maxTransactions: setup.maxTransactions } } })
    }))
  )
  return captured(Effect.scoped(Effect.provide(body, Layer.fresh(layer)))) as Effect.Effect<A, unknown, never>
}

/** A request as arriving from `address`. */
const fromAddress = (address: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, PeerAddress, address)

const register = (address: string, body: string | ReadableStream<Uint8Array>, headers: Record<string, string> = {}) =>
  Effect.flatMap(
    registerHandler(HttpServerRequest.fromWeb(
      new Request(`${ISSUER}/register`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body,
        ...(typeof body === "string" ? {} : { duplex: "half" })
      } as RequestInit)
    )),
    answer
  ).pipe(fromAddress(address))

const validMetadata = JSON.stringify(publicClientMetadata)

const get = (address: string, query: string) =>
  Effect.flatMap(authorizeGet(HttpServerRequest.fromWeb(new Request(`${ISSUER}/authorize?${query}`))), answer).pipe(fromAddress(address))

const post = (address: string, fields: Record<string, string>, cookie: string) =>
  Effect.flatMap(
    authorizePost(HttpServerRequest.fromWeb(
      new Request(`${ISSUER}/authorize`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", cookie },
        body: new URLSearchParams(fields).toString()
      })
    )),
    answer
  ).pipe(fromAddress(address))

const field = (html: string, name: string): string => {
  const match = new RegExp(`name="${name}" value="([^"]*)"`).exec(html)
  if (match?.[1] === undefined) throw new Error(`no field ${name}`)
  return match[1]
}

/** A consent page opened from `address`: the form's fields (approving `read`) and the cookie to send back. */
const openConsent = (address: string, clientId: string, query: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const page = yield* get(address, authorizeQuery(clientId, query))
    expect(page.status).toBe(200)
    const cookie = /^[^;]+/.exec(page.headers.get("set-cookie") ?? "")?.[0] ?? ""
    return { fields: { transaction: field(page.body, "transaction"), csrf: field(page.body, "csrf"), action: "approve", scope_0: "read" }, cookie }
  })

const signInWith = (address: string, consent: { readonly fields: Record<string, string>; readonly cookie: string }, apiKey: string) =>
  post(address, { ...consent.fields, api_key: apiKey }, consent.cookie)

const redirectOf = (reply: Answer): URL => {
  expect(reply.status).toBe(302)
  return new URL(reply.headers.get("location") ?? "")
}

describe("POST /register", () => {
  it.effect("is paced per client address: past it 429 temporarily_unavailable with Retry-After, logged; other addresses unaffected; time refills it", () =>
    using({ limits: { register: { perAddress: { limit: 3, window: "1 hour" } } } })(Effect.gen(function*() {
      for (let i = 0; i < 3; i++) expect((yield* register("198.51.100.1", validMetadata)).status).toBe(201)
      const refused = yield* register("198.51.100.1", validMetadata)
      expect(refused.status).toBe(429)
      // One registration comes back every 20 minutes.
      expect(refused.headers.get("retry-after")).toBe("1200")
      expect(refused.headers.get("cache-control")).toBe("no-store")
      expect(refused.json).toMatchObject({ error: "temporarily_unavailable" })
      expect(refused.json.error_description).toContain("too many registrations")
      expect(logLines.find((l) => l.startsWith("rate limited"))).toContain(`"limit":"register","client_address":"198.51.100.1","retry_after_s":1200`)
      // A bad document counts too: the pace is on requests, checked before the body is read.
      expect((yield* register("198.51.100.1", "{not json")).status).toBe(429)
      expect((yield* register("198.51.100.2", validMetadata)).status).toBe(201)
      yield* TestClock.adjust("20 minutes")
      expect((yield* register("198.51.100.1", validMetadata)).status).toBe(201)
      expect((yield* register("198.51.100.1", validMetadata)).status).toBe(429)
    })))

  it.effect("refuses a document over its size limit as invalid_client_metadata, with or without Content-Length; a member over its bound too", () =>
    using({ limits: { register: { maxDocumentBytes: 1000 } } })(Effect.gen(function*() {
      const big = JSON.stringify({ ...publicClientMetadata, software_id: "x".repeat(1000) })
      const declared = yield* register("198.51.100.1", big, { "content-length": String(big.length) })
      expect(declared.status).toBe(400)
      expect(declared.json).toMatchObject({ error: "invalid_client_metadata", error_description: "the client metadata document is larger than 1000 bytes" })
      const chunked = yield* register("198.51.100.1", new Blob([big]).stream())
      expect(chunked.status).toBe(400)
      expect(chunked.json.error).toBe("invalid_client_metadata")
      const named = yield* register("198.51.100.1", JSON.stringify({ ...publicClientMetadata, client_name: "n".repeat(257) }))
      expect(named.json).toMatchObject({ error: "invalid_client_metadata", error_description: "client_name is longer than 256 characters" })
      expect((yield* register("198.51.100.1", new Blob([validMetadata]).stream())).status).toBe(201)
    })))
})

describe("GET /authorize", () => {
  it.effect("is paced per client address: past it a 429 page with Retry-After, before any lookup; other addresses unaffected", () =>
    using({ limits: { authorize: { perAddress: { limit: 2, window: "1 minute" } } } })(Effect.gen(function*() {
      const client = yield* registerPublic()
      expect((yield* get("198.51.100.1", authorizeQuery(client.clientId))).status).toBe(200)
      expect((yield* get("198.51.100.1", authorizeQuery("unknown-client"))).status).toBe(400)
      const refused = yield* get("198.51.100.1", authorizeQuery(client.clientId))
      expect(refused.status).toBe(429)
      expect(refused.headers.get("content-type")).toContain("text/html")
      expect(refused.headers.get("retry-after")).toBe("30")
      expect(refused.body).toContain("Too many requests")
      expect(refused.body).toContain("Try again in 30 seconds")
      expect(refused.headers.get("location")).toBeNull()
      expect(logLines.some((l) => l.startsWith("rate limited") && l.includes(`"limit":"authorize"`))).toBe(true)
      expect((yield* get("198.51.100.2", authorizeQuery(client.clientId))).status).toBe(200)
    })))

  it.effect("bounds state and the other parameters: before the redirect URI is verified on a page, after it at the client, an overlong state not echoed", () =>
    using({ limits: { authorize: { perAddress: false } } })(Effect.gen(function*() {
      const client = yield* registerPublic()
      expect((yield* get("198.51.100.1", authorizeQuery(client.clientId, { state: "s".repeat(1024) }))).status).toBe(200)
      const longState = redirectOf(yield* get("198.51.100.1", authorizeQuery(client.clientId, { state: "s".repeat(1025) })))
      expect(longState.searchParams.get("error")).toBe("invalid_request")
      expect(longState.searchParams.get("error_description")).toBe("state is longer than 1024 characters")
      expect(longState.searchParams.has("state")).toBe(false)
      const longScope = redirectOf(yield* get("198.51.100.1", authorizeQuery(client.clientId, { scope: "read ".repeat(500) })))
      expect(longScope.searchParams.get("error_description")).toBe("scope is longer than 2048 characters")
      expect(longScope.searchParams.get("state")).toBe(CLIENT_STATE)
      for (const query of [authorizeQuery(`${client.clientId}${"x".repeat(2048)}`), authorizeQuery(client.clientId, { redirect_uri: `https://app.example/${"p".repeat(2048)}` })]) {
        const page = yield* get("198.51.100.1", query)
        expect(page.status).toBe(400)
        expect(page.headers.get("location")).toBeNull()
        expect(page.body).toContain("is longer than 2048 characters")
      }
    })))

  it.effect("reproduced without the budget: a flood of anonymous requests evicts a consent page a user has open, whose approval then fails", () =>
    using({ maxTransactions: 10, limits: { authorize: { perAddress: false, pending: false } } })(Effect.gen(function*() {
      const client = yield* registerPublic()
      const user = yield* openConsent("203.0.113.5", client.clientId)
      for (let i = 0; i < 11; i++) expect((yield* get(`198.51.100.${i}`, authorizeQuery(client.clientId))).status).toBe(200)
      const approval = yield* signInWith("203.0.113.5", user, ALICE_KEY)
      expect(approval.status).toBe(400)
      expect(approval.body).toContain("Authorization request not found")
    })))

  it.effect("within the pending budget a flood from many addresses over a whole transaction lifetime is refused (503 page), and the user's consent stays approvable", () =>
    // 5 per lifetime admits at most 9 within any lifetime: the store's 10 never fill up.
    using({ maxTransactions: 10, limits: { authorize: { perAddress: false, pending: 5 } } })(Effect.gen(function*() {
      const client = yield* registerPublic()
      const user = yield* openConsent("203.0.113.5", client.clientId)
      let admitted = 0
      let refused = 0
      // 20 requests from 20 addresses every 30 seconds for 9.5 minutes (the user's authorization lives 10).
      for (let round = 0; round < 20; round++) {
        for (let i = 0; i < 20; i++) {
          const reply = yield* get(`198.51.${round}.${i}`, authorizeQuery(client.clientId))
          if (reply.status === 200) admitted++
          else {
            expect(reply.status).toBe(503)
            expect(reply.body).toContain("Too many authorizations in progress")
            expect(Number(reply.headers.get("retry-after"))).toBeGreaterThan(0)
            refused++
          }
        }
        if (round < 19) yield* TestClock.adjust("30 seconds")
      }
      expect(admitted).toBeGreaterThan(0)
      expect(refused).toBeGreaterThan(300)
      expect(Option.isSome(yield* (yield* TokenStore).getTransaction(user.fields.transaction))).toBe(true)
      redirectOf(yield* signInWith("203.0.113.5", user, ALICE_KEY))
      expect(logLines.some((l) => l.startsWith("rate limited") && l.includes(`"limit":"authorize-pending"`))).toBe(true)
    })))

  it.effect("a request that stores nothing gives its reservation back: refused requests, and the development auto-approval", () =>
    Effect.gen(function*() {
      yield* using({ limits: { authorize: { perAddress: false, pending: 3 } } })(Effect.gen(function*() {
        const client = yield* registerPublic()
        for (let i = 0; i < 10; i++) expect((yield* get("198.51.100.1", authorizeQuery("unknown-client"))).status).toBe(400)
        for (let i = 0; i < 10; i++) redirectOf(yield* get("198.51.100.1", authorizeQuery(client.clientId, { code_challenge_method: "plain" })))
        for (let i = 0; i < 3; i++) expect((yield* get("198.51.100.1", authorizeQuery(client.clientId))).status).toBe(200)
        expect((yield* get("198.51.100.1", authorizeQuery(client.clientId))).status).toBe(503)
      }))
      yield* using({ autoApprove: "alice", limits: { authorize: { perAddress: false, pending: 3 } } })(Effect.gen(function*() {
        const client = yield* registerPublic()
        for (let i = 0; i < 10; i++) expect(redirectOf(yield* get("198.51.100.1", authorizeQuery(client.clientId))).searchParams.has("code")).toBe(true)
      }))
    }))
})

describe("sign-in on the consent page", () => {
  it.effect("failures per address count across authorizations: past them a 429 page, even for the right key; the request stays; other addresses sign in", () =>
    using({ limits: { signIn: { failuresPerAddress: { limit: 4, window: "15 minutes" } } } })(Effect.gen(function*() {
      const client = yield* registerPublic()
      const [one, two, three] = [yield* openConsent("198.51.100.7", client.clientId), yield* openConsent("198.51.100.7", client.clientId), yield* openConsent("198.51.100.7", client.clientId)]
      for (const consent of [one, one, two, two]) expect((yield* signInWith("198.51.100.7", consent, WRONG_KEY)).status).toBe(401)
      const locked = yield* signInWith("198.51.100.7", three, WRONG_KEY)
      expect(locked.status).toBe(429)
      expect(locked.headers.get("retry-after")).toBe("225")
      expect(locked.body).toContain("Sign-in paused")
      expect(locked.body).toContain("from your network")
      expect(locked.body).toContain("Try again in 4 minutes")
      // The right key is not even checked: a lockout never tells whether a guess was right.
      const right = yield* signInWith("198.51.100.7", three, ALICE_KEY)
      expect(right.status).toBe(429)
      expect(right.body).toBe(locked.body)
      expect(Option.isSome(yield* (yield* TokenStore).getTransaction(three.fields.transaction))).toBe(true)
      redirectOf(yield* signInWith("203.0.113.9", three, ALICE_KEY))
      const logged = logLines.filter((l) => l.startsWith("sign-in locked out"))
      expect(logged.length).toBe(2)
      expect(logged[0]).toContain(`"limit":"address","client_address":"198.51.100.7"`)
      expect(logLines.join("\n")).not.toContain(WRONG_KEY)
      expect(logLines.join("\n")).not.toContain(ALICE_KEY)
      // One failure comes back every 225 s.
      yield* TestClock.adjust("225 seconds")
      redirectOf(yield* signInWith("198.51.100.7", two, ALICE_KEY))
    })))

  it.effect("failures per user: a wrong key is a guess at every user's key, so guesses from many addresses share one budget", () =>
    using({ trustProxy: { proxies: ["loopback"] }, limits: { signIn: { failuresPerUser: { limit: 3, window: "15 minutes" } } } })(Effect.gen(function*() {
      const client = yield* registerPublic()
      const consent = yield* openConsent("198.51.100.1", client.clientId)
      for (const address of ["198.51.100.1", "198.51.100.2", "198.51.100.3"]) {
        expect((yield* signInWith(address, consent, WRONG_KEY)).status).toBe(401)
      }
      const locked = yield* signInWith("198.51.100.4", consent, ALICE_KEY)
      expect(locked.status).toBe(429)
      expect(locked.body).toContain("on this server")
      expect(logLines.some((l) => l.startsWith("sign-in locked out") && l.includes(`"limit":"user"`))).toBe(true)
      yield* TestClock.adjust("5 minutes")
      redirectOf(yield* signInWith("198.51.100.4", consent, ALICE_KEY))
    })))

  it.effect("failures per authorization under concurrency: of 10 wrong keys at once, 5 are checked; one refuses the request, the rest count nowhere", () =>
    using({ limits: { signIn: { failuresPerAddress: { limit: 50, window: "15 minutes" } } } })(Effect.gen(function*() {
      const client = yield* registerPublic()
      const consent = yield* openConsent("198.51.100.1", client.clientId)
      const replies = yield* Effect.all(Array.from({ length: 10 }, () => signInWith("198.51.100.1", consent, WRONG_KEY)), { concurrency: "unbounded" })
      const statuses = replies.map((r) => r.status).sort()
      expect(statuses.filter((s) => s === 401)).toHaveLength(4)
      const denials = replies.filter((r) => r.status === 302)
      expect(denials).toHaveLength(1)
      expect(new URL(denials[0]?.headers.get("location") ?? "").searchParams.get("error")).toBe("access_denied")
      expect(statuses.filter((s) => s === 400)).toHaveLength(5)
      const left = yield* (yield* RateLimiter).check({ bucket: "signin-address", limit: 50, window: "15 minutes" }, "198.51.100.1")
      expect(left.remaining).toBe(45)
    })))
})

/** The piece's options for the fetch-handler tests: one registration per address an hour. */
const options: McpServer.McpServerOptions = {
  publicUrl: "http://127.0.0.1:8787",
  jwks: { algorithm: "ES256", refreshInterval: "1 day" },
  limits: { register: { perAddress: { limit: 1, window: "1 hour" } } }
}

/** Metadata the piece (no scopes of its own) accepts. */
const pieceMetadata = { redirect_uris: ["http://127.0.0.1:9/cb"], token_endpoint_auth_method: "none", client_name: "web client" }

describe("the piece as a fetch handler", () => {
  const registration = (metadata: object = pieceMetadata) =>
    new Request("http://127.0.0.1:8787/register", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(metadata) })

  it.live("counts under the peer address the host gives (info.remoteAddress); without one, every request under one unknown address", () =>
    Effect.promise(async () => {
      const { dispose, handler } = McpServer.toWebHandler(options, MemoryStore.layer().pipe(Layer.provideMerge(NodeCrypto.layerEphemeral)))
      try {
        expect((await handler(registration(), { remoteAddress: "198.51.100.1" })).status).toBe(201)
        expect((await handler(registration(), { remoteAddress: "198.51.100.1" })).status).toBe(429)
        expect((await handler(registration(), { remoteAddress: "2001:db8:1:2::7" })).status).toBe(201)
        expect((await handler(registration(), { remoteAddress: "2001:db8:1:2::8" })).status).toBe(429)
        expect((await handler(registration())).status).toBe(201)
        expect((await handler(registration())).status).toBe(429)
      } finally {
        await dispose()
      }
    }))

  it.live("passes the bounds of LimitsOptions to the engine (registration members, authorization parameters)", () =>
    Effect.promise(async () => {
      const bounded = { ...options, limits: { register: { maxTextLength: 8 }, authorize: { maxStateLength: 4 } } }
      const { dispose, handler } = McpServer.toWebHandler(bounded, MemoryStore.layer().pipe(Layer.provideMerge(NodeCrypto.layerEphemeral)))
      try {
        const refused = await handler(registration({ ...pieceMetadata, client_name: "nine char" }), { remoteAddress: "198.51.100.1" })
        expect(await refused.json()).toMatchObject({ error: "invalid_client_metadata", error_description: "client_name is longer than 8 characters" })
        const accepted = await handler(registration({ ...pieceMetadata, client_name: "eight ch" }), { remoteAddress: "198.51.100.2" })
        const { client_id } = await accepted.json() as { client_id: string }
        const query = new URLSearchParams({
          response_type: "code",
          client_id,
          redirect_uri: "http://127.0.0.1:9/cb",
          state: "state",
          code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
          code_challenge_method: "S256"
        })
        const answered = await handler(new Request(`http://127.0.0.1:8787/authorize?${query}`), { remoteAddress: "198.51.100.2" })
        expect(new URL(answered.headers.get("location") ?? "").searchParams.get("error_description")).toBe("state is longer than 4 characters")
      } finally {
        await dispose()
      }
    }))

  it.effect("refuses unusable limits when the layer is built, naming the option", () =>
    Effect.gen(function*() {
      const stores = MemoryStore.layer().pipe(Layer.provideMerge(NodeCrypto.layerEphemeral))
      for (
        const [limits, trustProxy, named] of [
          [{ register: { perAddress: { limit: 0, window: "1 hour" } } }, undefined, "register.perAddress"],
          [{ authorize: { pending: 1.5 } }, undefined, "authorize.pending"],
          [{ signIn: { failuresPerAuthorization: 0 } }, undefined, "signIn.failuresPerAuthorization"],
          [{ authorize: { maxStateLength: 0 } }, undefined, "maxStateLength"],
          [{}, { proxies: ["nonsense"] }, "trustProxy"]
        ] as const
      ) {
        const built = yield* Effect.exit(Effect.scoped(Layer.build(
          McpServer.layer({ ...options, limits, ...(trustProxy === undefined ? {} : { trustProxy }) }).pipe(Layer.provide(stores))
        )))
        expect(Exit.isFailure(built) && String(Exit.isFailure(built) ? built.cause : "")).toContain(named)
      }
    }))
})

describe("store growth under oversized registrations", () => {
  it.live("1,000 registrations of 1 MiB client_name each, from 1,000 addresses: all refused, the memory store grows by under 128 bytes per request (one rate-limit record each)", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const stores = yield* Layer.buildWithScope(MemoryStore.layer().pipe(Layer.provideMerge(NodeCrypto.layerEphemeral)), scope)
      const held = Effect.map(Effect.provide(Effect.flatMap(RawStorage, (raw) => raw.dump), stores), (dump) => dump.reduce((n, s) => n + s.length, 0))
      const { dispose, handler } = McpServer.toWebHandler(
        { ...options, limits: {} },
        // A thousand request lines are not what this test reads.
        Layer.merge(Layer.succeedContext(stores), Logger.minimumLogLevel(LogLevel.Warning))
      )
      const oversized = JSON.stringify({ ...pieceMetadata, client_name: "x".repeat(1024 * 1024) })
      const before = yield* held
      const statuses = yield* Effect.promise(async () => {
        const seen = new Map<number, number>()
        for (let i = 0; i < 1000; i++) {
          const reply = await handler(
            new Request("http://127.0.0.1:8787/register", {
              method: "POST",
              headers: { "content-type": "application/json", "content-length": String(oversized.length) },
              body: oversized
            }),
            { remoteAddress: `10.${i >> 8}.${i & 255}.1` }
          )
          await reply.arrayBuffer()
          seen.set(reply.status, (seen.get(reply.status) ?? 0) + 1)
        }
        return seen
      })
      const growth = (yield* held) - before
      yield* Effect.promise(dispose)
      yield* Scope.close(scope, Exit.void)
      expect([...statuses]).toEqual([[400, 1000]])
      // Without the limits each would have stored its megabyte (the issue measured 49 MB for 20).
      expect(growth).toBeLessThan(1000 * 128)
      yield* Effect.logInfo(`memory store growth from 1,000 oversized registrations: ${growth} characters`)
    }), { timeout: 60_000 })
})
