import { HttpServerRequest } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import { authorizeGet, authorizePost } from "../../src/http/authorize.ts"
import { CSRF_COOKIE, csrfToken } from "../../src/http/consent/csrf.ts"
import { formActionSource, grantedScopesFrom, redirectHost, ScopeDescriptions } from "../../src/http/consent/page.ts"
import { signInLayer, type SignInOptions } from "../../src/http/consent/signIn.ts"
import { DEFAULT_LIMITS } from "../../src/http/limits.ts"

const MAX_SIGN_IN_FAILURES = DEFAULT_LIMITS.signInFailuresPerAuthorization
import { federationLayer, type UpstreamOptions } from "../../src/http/upstream/layer.ts"
import { token } from "../../src/oauth/tokenEndpoint.ts"
import { TokenStore } from "../../src/services/TokenStore.ts"
import { authorizeQuery, CLIENT_STATE, engine, ISSUER, pkce, REDIRECT, registerPublic, RESOURCE, type EngineOptions } from "../oauth/fixtures.ts"
import { type Answer, answer, captureLogs } from "../support/http.ts"

const ALICE_KEY = "alice-key-0123456789abcdef"
const BOB_KEY = "bob-key-0123456789abcdef"

const baseSignIn: SignInOptions = {
  apiKeys: [{ user: "alice", apiKey: Redacted.make(ALICE_KEY) }, { user: "bob", apiKey: Redacted.make(BOB_KEY) }]
}

interface Setup {
  readonly signIn?: Partial<SignInOptions>
  readonly scopeDescriptions?: Readonly<Record<string, string>>
  readonly engine?: EngineOptions
  /** Upstream mode: a federation (no request is made until it is used). */
  readonly upstream?: UpstreamOptions
}

/** Log lines written while a test runs: message and annotations, as text. */
const { captured, lines: logLines } = captureLogs()

/** Run a test body over fresh memory stores, the engine and the server settings. */
const using = (setup: Setup = {}) =>
<A, E, R>(body: Effect.Effect<A, E, R>) => {
  const base = Layer.merge(signInLayer({ ...baseSignIn, ...setup.signIn }), Layer.succeed(ScopeDescriptions, setup.scopeDescriptions ?? {})).pipe(
    Layer.provideMerge(engine(setup.engine))
  )
  const services = setup.upstream === undefined ? base : Layer.merge(base, federationLayer(ISSUER, setup.upstream))
  return captured(Effect.scoped(Effect.provide(body, Layer.fresh(services)))) as Effect.Effect<A, unknown, never>
}

const get = (query: string, headers: Record<string, string> = {}) =>
  Effect.flatMap(
    authorizeGet(HttpServerRequest.fromWeb(new Request(`${ISSUER}/authorize?${query}`, { headers }))),
    answer
  )

const post = (fields: Record<string, string> | string, headers: Record<string, string> = {}) =>
  Effect.flatMap(
    authorizePost(HttpServerRequest.fromWeb(
      new Request(`${ISSUER}/authorize`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
        body: typeof fields === "string" ? fields : new URLSearchParams(fields).toString()
      })
    )),
    answer
  )

const field = (html: string, name: string): string => {
  const match = new RegExp(`name="${name}" value="([^"]*)"`).exec(html)
  if (match?.[1] === undefined) throw new Error(`no field ${name}`)
  return match[1]
}

/** The `name=value` of the CSRF cookie a response sets. */
const cookieOf = (page: Answer): string => {
  const header = page.headers.get("set-cookie") ?? ""
  const match = new RegExp(`${CSRF_COOKIE}=([^;]+)`).exec(header)
  if (match?.[1] === undefined) throw new Error("no CSRF cookie")
  return `${CSRF_COOKIE}=${match[1]}`
}

/** Register a client and open its consent page: the page, its form fields and the cookie to send back. */
const consent = (metadata: Record<string, unknown> = {}, query: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const client = yield* registerPublic(metadata)
    const page = yield* get(authorizeQuery(client.clientId, query))
    expect(page.status).toBe(200)
    const form = { transaction: field(page.body, "transaction"), csrf: field(page.body, "csrf") }
    return { client, page, form, cookie: cookieOf(page) }
  })

const location = (response: Answer): URL => {
  expect(response.status).toBe(302)
  return new URL(response.headers.get("location") ?? "")
}

const exchange = (clientId: string, code: string) =>
  token({
    grantType: "authorization_code",
    client: { clientId, method: "none" },
    code,
    redirectUri: REDIRECT,
    codeVerifier: pkce().verifier
  })

describe("GET /authorize: the consent page", () => {
  it.effect("shows the client, its redirect host, the scopes as ticked boxes, the sign-in and both buttons", () =>
    using()(Effect.gen(function*() {
      const { client, form, page } = yield* consent()
      expect(page.headers.get("content-type")).toContain("text/html")
      expect(page.headers.get("content-security-policy")).toContain("default-src 'none'")
      // Browsers apply form-action to the redirect that answers the form, and send Origin only under same-origin.
      expect(page.headers.get("content-security-policy")).toContain("form-action 'self' https://app.example;")
      expect(page.headers.get("referrer-policy")).toBe("same-origin")
      expect(page.headers.get("cache-control")).toBe("no-store")
      expect(page.body).toContain("Test client")
      expect(page.body).toContain(client.clientId)
      expect(page.body).toContain(`<strong class="redirect-host">app.example</strong>`)
      expect(page.body).toContain(`<input type="checkbox" name="scope_0" value="read" checked>`)
      expect(page.body).toContain(`<input type="checkbox" name="scope_1" value="write" checked>`)
      expect(page.body).toContain(`type="password" name="api_key"`)
      expect(page.body).toContain(`value="approve"`)
      expect(page.body).toContain(`value="deny" formnovalidate`)
      expect(page.body).toContain(`action="/authorize"`)
      const pending = yield* (yield* TokenStore).getTransaction(form.transaction)
      expect(Option.isSome(pending)).toBe(true)
    })))

  it.effect("sets the CSRF cookie HttpOnly, SameSite=Strict, Path=/authorize, Secure on https, for the transaction TTL", () =>
    using()(Effect.gen(function*() {
      const { cookie, form, page } = yield* consent()
      const header = page.headers.get("set-cookie") ?? ""
      expect(header).toContain("HttpOnly")
      expect(header).toContain("SameSite=Strict")
      expect(header).toContain("Path=/authorize")
      expect(header).toContain("Secure")
      expect(header).toContain("Max-Age=600")
      const nonce = cookie.slice(CSRF_COOKIE.length + 1)
      expect(form.csrf).toBe(yield* csrfToken(form.transaction, nonce))
      expect(page.body).not.toContain(nonce)
    })))

  it.effect("on an http loopback public URL the cookie is not Secure", () =>
    using({ engine: { oauth: { issuer: "http://127.0.0.1:8787", resources: [RESOURCE] } } })(Effect.gen(function*() {
      const { page } = yield* consent()
      expect(page.headers.get("set-cookie")).not.toContain("Secure")
    })))

  it.effect("keeps the nonce the browser already holds, so two open consent pages both work", () =>
    using()(Effect.gen(function*() {
      const first = yield* consent()
      const second = yield* get(authorizeQuery(first.client.clientId), { cookie: first.cookie })
      expect(cookieOf(second)).toBe(first.cookie)
      const approved = yield* post({ ...first.form, action: "approve", api_key: ALICE_KEY, scope_0: "read" }, { cookie: first.cookie })
      expect(location(approved).searchParams.get("code")).not.toBeNull()
    })))

  it.effect("escapes the client name and the scopes (no markup from the client reaches the page)", () =>
    using({ engine: { oauth: { scopesSupported: ["read", "<img/src=x>"] } } })(Effect.gen(function*() {
      const { page } = yield* consent(
        { client_name: `<script>alert("x")</script>`, scope: "read <img/src=x>" },
        { scope: "read <img/src=x>" }
      )
      expect(page.body).not.toContain("<script>")
      expect(page.body).not.toContain("<img")
      expect(page.body).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;")
      expect(page.body).toContain(`value="&lt;img/src=x&gt;" checked`)
    })))

  it.effect("a request refused before the redirect URI is known is a page for the user; after, a redirect to the client", () =>
    using()(Effect.gen(function*() {
      const client = yield* registerPublic()
      const duplicate = yield* get(`${authorizeQuery(client.clientId)}&state=again`)
      expect(duplicate.status).toBe(400)
      expect(duplicate.headers.get("content-type")).toContain("text/html")
      const unknown = yield* get(authorizeQuery("no-such-client"))
      expect(unknown.status).toBe(400)
      expect(unknown.body).toContain("unknown client")
      const badRedirect = yield* get(authorizeQuery(client.clientId, { redirect_uri: "https://evil.example/cb" }))
      expect(badRedirect.status).toBe(400)
      const plain = yield* get(authorizeQuery(client.clientId, { code_challenge_method: "plain" }))
      const to = location(plain)
      expect(to.origin + to.pathname).toBe(REDIRECT)
      expect(to.searchParams.get("error")).toBe("invalid_request")
      expect(to.searchParams.get("state")).toBe(CLIENT_STATE)
    })))

  it.effect("without API_KEYS the page says sign-in is not configured and offers only Deny; approving is refused", () =>
    using({ signIn: { apiKeys: [] } })(Effect.gen(function*() {
      const { cookie, form, page } = yield* consent()
      expect(page.body).toContain("Sign-in is not configured")
      expect(page.body).not.toContain(`name="api_key"`)
      expect(page.body).not.toContain(`value="approve"`)
      expect(page.body).toContain(`value="deny"`)
      const refused = yield* post({ ...form, action: "approve", api_key: ALICE_KEY }, { cookie })
      expect(refused.status).toBe(403)
      const denied = yield* post({ ...form, action: "deny" }, { cookie })
      expect(location(denied).searchParams.get("error")).toBe("access_denied")
    })))
})

describe("POST /authorize: CSRF", () => {
  it.effect("a missing cookie, a wrong token, another transaction's token or a foreign Origin is 403; the transaction stays", () =>
    using()(Effect.gen(function*() {
      const { client, cookie, form } = yield* consent()
      const other = yield* get(authorizeQuery(client.clientId), { cookie })
      const approve = { ...form, action: "approve", api_key: ALICE_KEY, scope_0: "read", scope_1: "write" }

      const attempts = [
        post(approve),
        post({ ...approve, csrf: "x".repeat(43) }, { cookie }),
        post({ ...approve, csrf: field(other.body, "csrf") }, { cookie }),
        post(approve, { cookie: `${CSRF_COOKIE}=${"A".repeat(22)}` }),
        post(approve, { cookie, origin: "https://evil.example" }),
        post({ ...approve, csrf: "" }, { cookie })
      ]
      for (const attempt of attempts) {
        const refused = yield* attempt
        expect(refused.status).toBe(403)
        expect(refused.headers.get("content-type")).toContain("text/html")
        expect(refused.headers.get("location")).toBeNull()
      }
      expect(Option.isSome(yield* (yield* TokenStore).getTransaction(form.transaction))).toBe(true)

      const approved = yield* post(approve, { cookie, origin: ISSUER })
      expect(location(approved).searchParams.get("code")).not.toBeNull()
    })))

  it.effect("a body that is not a form, or repeats a field, is a 400 page", () =>
    using()(Effect.gen(function*() {
      const { cookie, form } = yield* consent()
      const json = yield* post(JSON.stringify(form), { cookie, "content-type": "application/json" })
      expect(json.status).toBe(400)
      const repeated = yield* post(`${new URLSearchParams(form).toString()}&action=deny&action=approve`, { cookie })
      expect(repeated.status).toBe(400)
    })))
})

describe("POST /authorize: sign-in and decision", () => {
  it.effect("approve with the right key: 302 to the client with code, state and iss; the code is for that user", () =>
    using()(Effect.gen(function*() {
      const { client, cookie, form } = yield* consent()
      const approved = yield* post({ ...form, action: "approve", api_key: BOB_KEY, scope_0: "read", scope_1: "write" }, { cookie })
      const to = location(approved)
      expect(to.origin + to.pathname).toBe(REDIRECT)
      expect(to.searchParams.get("state")).toBe(CLIENT_STATE)
      expect(to.searchParams.get("iss")).toBe(ISSUER)
      expect(approved.headers.get("cache-control")).toBe("no-store")
      const issued = yield* exchange(client.clientId, to.searchParams.get("code") ?? "")
      expect(issued.scopes).toEqual(["read", "write"])
      const grant = yield* (yield* TokenStore).getGrant(issued.grantId)
      expect(Option.map(grant, (g) => g.subject)).toEqual(Option.some("bob"))
      const line = logLines.find((l) => l.startsWith("authorization approved")) ?? ""
      expect(line).toContain(`"user":"bob"`)
      expect(line).not.toContain(BOB_KEY)
      expect(line).not.toContain(to.searchParams.get("code"))
    })))

  it.effect("an unticked scope is not granted: the code's tokens carry only the ticked ones", () =>
    using()(Effect.gen(function*() {
      const { client, cookie, form } = yield* consent()
      const approved = yield* post({ ...form, action: "approve", api_key: ALICE_KEY, scope_1: "write", scope_7: "admin" }, { cookie })
      const issued = yield* exchange(client.clientId, location(approved).searchParams.get("code") ?? "")
      expect(issued.scopes).toEqual(["write"])
    })))

  it.effect("a wrong key is 401 with the page again, nothing logged of the key, and the transaction still usable", () =>
    using()(Effect.gen(function*() {
      const { client, cookie, form } = yield* consent()
      const wrong = yield* post({ ...form, action: "approve", api_key: "wrong-key-0123456789", scope_1: "write" }, { cookie })
      expect(wrong.status).toBe(401)
      expect(wrong.body).toContain("That API key is not valid")
      expect(wrong.body).toContain(`${MAX_SIGN_IN_FAILURES - 1} attempts left`)
      expect(wrong.body).toContain(`name="scope_0" value="read">`)
      expect(wrong.body).toContain(`name="scope_1" value="write" checked>`)
      expect(field(wrong.body, "csrf")).toBe(form.csrf)
      expect(logLines.some((l) => l.startsWith("sign-in failed"))).toBe(true)
      expect(logLines.join("\n")).not.toContain("wrong-key-0123456789")

      const empty = yield* post({ ...form, action: "approve", api_key: "", scope_0: "read" }, { cookie })
      expect(empty.status).toBe(401)

      const approved = yield* post({ ...form, action: "approve", api_key: ALICE_KEY, scope_0: "read" }, { cookie })
      const issued = yield* exchange(client.clientId, location(approved).searchParams.get("code") ?? "")
      expect(issued.scopes).toEqual(["read"])
    })))

  it.effect(`after ${MAX_SIGN_IN_FAILURES} wrong keys the request is refused: access_denied with state, transaction gone`, () =>
    using()(Effect.gen(function*() {
      const { cookie, form } = yield* consent()
      const wrong = { ...form, action: "approve", api_key: "wrong-key-0123456789", scope_0: "read" }
      for (let i = 1; i < MAX_SIGN_IN_FAILURES; i++) expect((yield* post(wrong, { cookie })).status).toBe(401)
      const to = location(yield* post(wrong, { cookie }))
      expect(to.searchParams.get("error")).toBe("access_denied")
      expect(to.searchParams.get("state")).toBe(CLIENT_STATE)
      expect(Option.isNone(yield* (yield* TokenStore).getTransaction(form.transaction))).toBe(true)
      const late = yield* post({ ...form, action: "approve", api_key: ALICE_KEY }, { cookie })
      expect(late.status).toBe(400)
    })))

  it.effect("approving with no scope ticked is refused with a message (400, the page again, no code); the request stays open", () =>
    using()(Effect.gen(function*() {
      const { client, cookie, form } = yield* consent()
      const nothing = yield* post({ ...form, action: "approve", api_key: ALICE_KEY }, { cookie })
      expect(nothing.status).toBe(400)
      expect(nothing.headers.get("location")).toBeNull()
      expect(nothing.body).toContain("Tick at least one permission to approve, or choose Deny.")
      expect(nothing.body).toContain(`name="scope_0" value="read">`)
      expect(logLines.some((l) => l.startsWith("authorization approved"))).toBe(false)
      expect(Option.isSome(yield* (yield* TokenStore).getTransaction(form.transaction))).toBe(true)
      const approved = yield* post({ ...form, action: "approve", api_key: ALICE_KEY, scope_1: "write" }, { cookie })
      const issued = yield* exchange(client.clientId, location(approved).searchParams.get("code") ?? "")
      expect(issued.scopes).toEqual(["write"])
    })))

  it.effect("each scope is shown with its configured description (a default for one without); the resource granted is shown", () =>
    using({ scopeDescriptions: { read: "Read your <notes>" } })(Effect.gen(function*() {
      const { page } = yield* consent()
      expect(page.body).toContain(`<code>read</code><span class="scope-description">Read your &lt;notes&gt;</span>`)
      expect(page.body).toContain(`<code>write</code><span class="scope-description">No description is configured for this permission.</span>`)
      expect(page.body).toContain(`Access to: <code>${RESOURCE}</code>`)
      expect(page.body).toContain(`value="approve" class="primary"`)
      expect(page.body).toContain(`value="deny" formnovalidate class="secondary"`)
    })))

  it.effect("deny: 302 access_denied with state and iss; the transaction is taken", () =>
    using()(Effect.gen(function*() {
      const { cookie, form } = yield* consent()
      const to = location(yield* post({ ...form, action: "deny" }, { cookie }))
      expect(to.origin + to.pathname).toBe(REDIRECT)
      expect(to.searchParams.get("error")).toBe("access_denied")
      expect(to.searchParams.get("state")).toBe(CLIENT_STATE)
      expect(to.searchParams.get("iss")).toBe(ISSUER)
      const again = yield* post({ ...form, action: "deny" }, { cookie })
      expect(again.status).toBe(400)
      expect(again.body).toContain("Authorization request not found")
    })))

  it.effect("an unknown transaction (with a matching CSRF token) is a 400 page; an unknown action too", () =>
    using()(Effect.gen(function*() {
      const { cookie, form } = yield* consent()
      const nonce = cookie.slice(CSRF_COOKIE.length + 1)
      const unknown = yield* post({ transaction: "nope", csrf: yield* csrfToken("nope", nonce), action: "deny" }, { cookie })
      expect(unknown.status).toBe(400)
      const odd = yield* post({ ...form, action: "maybe" }, { cookie })
      expect(odd.status).toBe(400)
    })))

  it.effect("upstream mode does not accept API-key sign-in", () =>
    using({ upstream: { issuer: "https://idp.example", clientId: "c" } })(Effect.gen(function*() {
      const { cookie, form } = yield* consent()
      const refused = yield* post({ ...form, action: "approve", api_key: ALICE_KEY }, { cookie })
      expect(refused.status).toBe(400)
    })))
})

describe("DEV_AUTO_APPROVE", () => {
  it.effect("approves at once as the named user with every requested scope: 302 with code, state and iss; logged without the code", () =>
    using({ signIn: { autoApprove: "dev-user" } })(Effect.gen(function*() {
      const client = yield* registerPublic()
      const response = yield* get(authorizeQuery(client.clientId))
      const to = location(response)
      expect(response.headers.get("set-cookie")).toBeNull()
      expect(to.searchParams.get("state")).toBe(CLIENT_STATE)
      expect(to.searchParams.get("iss")).toBe(ISSUER)
      const code = to.searchParams.get("code") ?? ""
      const issued = yield* exchange(client.clientId, code)
      expect(issued.scopes).toEqual(["read", "write"])
      const grant = yield* (yield* TokenStore).getGrant(issued.grantId)
      expect(Option.map(grant, (g) => g.subject)).toEqual(Option.some("dev-user"))
      const line = logLines.find((l) => l.startsWith("authorization auto-approved")) ?? ""
      expect(line).toContain(`"user":"dev-user"`)
      expect(line).toContain(client.clientId)
      expect(logLines.join("\n")).not.toContain(code)
    })))

  it.effect("still refuses a bad request (to the client) rather than approving it", () =>
    using({ signIn: { autoApprove: "dev-user" } })(Effect.gen(function*() {
      const client = yield* registerPublic()
      const to = location(yield* get(authorizeQuery(client.clientId, { scope: "admin" })))
      expect(to.searchParams.get("error")).toBe("invalid_scope")
      expect(to.searchParams.get("code")).toBeNull()
    })))
})

describe("consent page helpers", () => {
  it("form-action source and shown host for web, loopback, IPv6 and native redirect URIs", () => {
    expect(formActionSource("https://app.example/cb?x=1")).toBe("https://app.example")
    expect(formActionSource("http://127.0.0.1:33418/callback")).toBe("http://127.0.0.1:33418")
    expect(formActionSource("http://[::1]:3000/cb")).toBe("http:")
    expect(formActionSource("com.example.app:/oauth")).toBe("com.example.app:")
    expect(formActionSource("not a uri")).toBeUndefined()
    expect(redirectHost("http://127.0.0.1:33418/callback")).toBe("127.0.0.1:33418")
    expect(redirectHost("cursor://anysphere.cursor-mcp/oauth/callback")).toBe("anysphere.cursor-mcp")
    expect(redirectHost("com.example.app:/oauth")).toBe("com.example.app:")
  })

  it("granted scopes: only requested ones, in requested order, from scope_<i> fields", () => {
    expect(grantedScopesFrom({ scope_1: "write", scope_0: "read", scope_9: "admin", scope: "admin", scopex: "admin" }, ["read", "write"]))
      .toEqual(["read", "write"])
    expect(grantedScopesFrom({ api_key: "read" }, ["read"])).toEqual([])
  })
})
