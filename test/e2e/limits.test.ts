/**
 * The attacks of issue 13 against the real server process, over HTTP, and
 * the bounds that hold now:
 * - 1,100 anonymous authorization requests while a user has a consent page
 *   open: without the limits (reproduced) her approval fails; with them, from
 *   one address or from 1,100 (through a trusted proxy), it succeeds;
 * - a chunked body over the limit: 413, logged like any other refusal;
 * - 1,000 registrations with a 1 MiB `client_name`: the SQLite file grows by
 *   rate-limit rows only (measured on the file after a clean shutdown, when
 *   the WAL is checkpointed), and one address is paced after 20.
 */
import { describe, expect, it } from "@effect/vitest"
import { statSync } from "node:fs"
import { request } from "node:http"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { openConsent, submitConsent } from "../http/consentBrowser.ts"
import { REDIRECT_URI, registerPublicClient } from "../support/oauthFlow.ts"
import { type ServerProcess, startServer } from "../support/server.ts"

const ALICE_KEY = "alice-limits-key-0123456789"

/** An authorization URL for `clientId` with this `state`. */
const authorizationUrl = (base: string, clientId: string, state: string): URL => {
  const url = new URL(`${base}/authorize`)
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    state,
    scope: "mcp:tools",
    code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    code_challenge_method: "S256"
  }).toString()
  return url
}

/** `count` requests, `concurrency` at a time; the number of answers per status. */
const flood = async (count: number, concurrency: number, one: (i: number) => Promise<Response>): Promise<Map<number, number>> => {
  const statuses = new Map<number, number>()
  for (let i = 0; i < count; i += concurrency) {
    const replies = await Promise.all(
      Array.from({ length: Math.min(concurrency, count - i) }, async (_, j) => {
        const reply = await one(i + j)
        await reply.arrayBuffer()
        return reply.status
      })
    )
    for (const status of replies) statuses.set(status, (statuses.get(status) ?? 0) + 1)
  }
  return statuses
}

/** The i-th of 1,100 distinct public-looking addresses, as a trusted proxy would report them. */
const forwardedFor = (i: number) => ({ "x-forwarded-for": `203.0.${i >> 8}.${i & 255}` })

/** 1,100 anonymous authorization requests for `clientId`, as `headers(i)` says they come. */
const anonymousFlood = (server: ServerProcess, clientId: string, headers: (i: number) => Record<string, string> = () => ({})) =>
  flood(1100, 50, (i) => fetch(authorizationUrl(server.url, clientId, `anonymous-${i}`), { redirect: "manual", headers: headers(i) }))

describe("1,100 anonymous authorization requests while a user has her consent page open", () => {
  it("without the limits (reproduced): the memory store's 1,000 pending authorizations overflow and her approval fails", { timeout: 120_000 }, async () => {
    const server = await startServer({ env: { API_KEYS: `alice=${ALICE_KEY}`, AUTHORIZE_RATE_LIMIT: "off", AUTHORIZE_PENDING_LIMIT: "off" } })
    try {
      const clientId = await registerPublicClient(server.url)
      const consent = await openConsent(authorizationUrl(server.url, clientId, "alice"))
      expect(await anonymousFlood(server, clientId)).toEqual(new Map([[200, 1100]]))
      const approval = await submitConsent(consent, { action: "approve", apiKey: ALICE_KEY })
      expect(approval.status).toBe(400)
      expect(await approval.text()).toContain("Authorization request not found")
    } finally {
      await server.stop()
    }
  })

  it("with the default limits, from one address or from 1,100 behind a trusted proxy: refused at the door, and her approval succeeds", { timeout: 120_000 }, async () => {
    const server = await startServer({ env: { API_KEYS: `alice=${ALICE_KEY}`, TRUST_PROXY: "loopback" } })
    try {
      const clientId = await registerPublicClient(server.url)
      const consent = await openConsent(authorizationUrl(server.url, clientId, "alice"))

      // One address: 20 in a burst (the user's page was one; one more comes back every 3 s), then 429.
      const oneAddress = await anonymousFlood(server, clientId)
      expect(oneAddress.get(200)).toBeLessThanOrEqual(25)
      expect(oneAddress.get(429)).toBeGreaterThanOrEqual(1080)

      // 1,100 addresses: each within its pace; the budget all anonymous requests share refuses the rest (503).
      const manyAddresses = await anonymousFlood(server, clientId, forwardedFor)
      expect([...manyAddresses.keys()].sort()).toEqual([200, 503])
      // 500 per 10 minutes admits at most 999 within one lifetime, the user's and the one address's among them.
      expect((manyAddresses.get(200) ?? 0) + (oneAddress.get(200) ?? 0) + 1).toBeLessThanOrEqual(999)
      expect(manyAddresses.get(200)).toBeGreaterThanOrEqual(400)

      const approval = await submitConsent(consent, { action: "approve", apiKey: ALICE_KEY })
      expect(approval.status).toBe(302)
      const back = new URL(approval.headers.get("location") ?? "")
      expect(back.searchParams.get("state")).toBe("alice")
      expect(back.searchParams.get("code")).toBeTruthy()

      const refusals = server.lines().filter((line) => line.includes("\"rate limited\""))
      // The socket's address is the client's unless a trusted proxy says otherwise.
      expect(refusals.some((line) => line.includes("\"limit\":\"authorize\"") && line.includes("\"client_address\":\"127.0.0.1\""))).toBe(true)
      expect(refusals.some((line) => line.includes("\"limit\":\"authorize-pending\"") && line.includes("\"client_address\":\"203.0."))).toBe(true)
      expect(server.lines().some((line) => line.includes("anonymous-"))).toBe(false)
    } finally {
      await server.stop()
    }
  })
})

/** POST a body in chunks without Content-Length (chunked transfer encoding): status and body of the answer. */
const postChunked = (url: string, contentType: string, chunks: ReadonlyArray<string>, headers: Record<string, string> = {}) =>
  new Promise<{ readonly status: number; readonly body: string }>((resolve, reject) => {
    const outgoing = request(url, { method: "POST", headers: { "content-type": contentType, ...headers } }, (response) => {
      let body = ""
      response.on("data", (chunk: Buffer) => body += chunk.toString("utf8"))
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }))
    })
    outgoing.on("error", reject)
    for (const chunk of chunks) outgoing.write(chunk)
    outgoing.end()
  })

describe("a chunked body over the limit", () => {
  it("is answered 413 (not a reset) and logged like any other refusal; within the limit it is read", { timeout: 60_000 }, async () => {
    const server = await startServer({ env: { MAX_BODY_BYTES: "4096" } })
    try {
      const oversized = ["{\"client_name\":\"", "x".repeat(3000), "x".repeat(3000), "\"}"]
      const registered = await postChunked(`${server.url}/register`, "application/json", oversized)
      expect(registered.status).toBe(413)
      expect(JSON.parse(registered.body)).toMatchObject({ error: "invalid_request", error_description: "the request body exceeds 4096 bytes" })
      const token = await postChunked(`${server.url}/token`, "application/x-www-form-urlencoded", ["grant_type=", "x".repeat(5000)])
      expect(token.status).toBe(413)
      const small = await postChunked(`${server.url}/register`, "application/json", [
        "{\"redirect_uris\":[\"http://127.0.0.1:9/cb\"],",
        "\"token_endpoint_auth_method\":\"none\"}"
      ])
      expect(small.status).toBe(201)
      await sleep(200)
      const logged = server.lines().map((l) => JSON.parse(l) as { message: string; annotations: Record<string, unknown> })
        .filter((l) => l.message === "request")
      expect(logged).toContainEqual(expect.objectContaining({ annotations: expect.objectContaining({ method: "POST", path: "/register", status: 413 }) }))
      expect(logged).toContainEqual(expect.objectContaining({ annotations: expect.objectContaining({ path: "/token", status: 413 }) }))
    } finally {
      await server.stop()
    }
  })
})

/** The size of the SQLite database of a stopped server (its WAL checkpointed into the file on close). */
const databaseBytes = (dataDir: string): number => statSync(join(dataDir, "store.db")).size

describe("1,000 registrations with a 1 MiB client_name on SQLite", () => {
  it("are all refused: the file grows by rate-limit rows only (under 256 KiB in all), and one address is paced after 20", { timeout: 240_000 }, async () => {
    const env = { STORE: "sqlite", TRUST_PROXY: "loopback" }
    const first = await startServer({ env })
    await registerPublicClient(first.url)
    expect(await first.stop()).toBe(0)
    const before = databaseBytes(first.dataDir)

    const server = await startServer({ env: { ...env, DATA_DIR: first.dataDir } })
    let statuses: Map<number, number>
    let paced: Map<number, number>
    try {
      const oversized = JSON.stringify({
        client_name: "x".repeat(1024 * 1024),
        redirect_uris: ["http://127.0.0.1:9/cb"],
        token_endpoint_auth_method: "none"
      })
      const registration = (headers: Record<string, string>) =>
        fetch(`${server.url}/register`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: oversized })
      statuses = await flood(1000, 10, (i) => registration(forwardedFor(i)))
      paced = await flood(30, 10, () => registration({ "x-forwarded-for": "198.51.100.77" }))
    } finally {
      expect(await server.stop()).toBe(0)
    }
    const growth = databaseBytes(first.dataDir) - before
    expect(statuses).toEqual(new Map([[400, 1000]]))
    expect(paced).toEqual(new Map([[400, 20], [429, 10]]))
    // Each refused request may leave one rate-limit row (a hashed key and an instant) and its index entry:
    // well under 256 bytes each. Without the limits, each would have stored its megabyte.
    expect(growth).toBeLessThan(256 * 1024)
    process.stdout.write(`SQLite growth from 1,000 oversized registrations: ${growth} bytes (${before} -> ${before + growth})\n`)
  })
})
