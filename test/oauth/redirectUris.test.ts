/**
 * Redirect URI rules as properties (fast-check): the RFC 8252 §7.3 loopback
 * port rule, the schemes a client may register, and exact matching for
 * everything else.
 */
import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { matchRedirectUri, redirectUriProblem } from "../../src/oauth/redirectUris.ts"

const LOOPBACK_HOSTS = ["127.0.0.1", "[::1]", "localhost", "127.0.0.53"] as const

const segment = fc.stringMatching(/^[A-Za-z0-9._~-]{1,12}$/)
const path = fc.array(segment, { minLength: 0, maxLength: 4 }).map((parts) => parts.map((p) => `/${p}`).join(""))
const query = fc.option(fc.stringMatching(/^[a-z]{1,6}=[A-Za-z0-9]{0,8}$/), { nil: undefined }).map((q) => q === undefined ? "" : `?${q}`)
const port = fc.integer({ min: 1, max: 65535 })
const optionalPort = fc.option(port, { nil: undefined }).map((p) => p === undefined ? "" : `:${p}`)
const loopbackHost = fc.constantFrom(...LOOPBACK_HOSTS)
const webHost = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}\.(example|test|org)$/)

/** Path and query: what must stay exact. */
const rest = fc.tuple(path, query).map(([p, q]) => (p === "" && q !== "" ? `/${q}` : `${p}${q}`))

describe("redirect URI matching (RFC 8252 §7.3 loopback, exact otherwise)", () => {
  it("a loopback http redirect URI matches any port the client presents, registered with or without a port", () => {
    fc.assert(fc.property(loopbackHost, optionalPort, port, rest, (host, registeredPort, presented, after) => {
      const registered = `http://${host}${registeredPort}${after}`
      expect(redirectUriProblem(registered, "public")).toBeUndefined()
      expect(matchRedirectUri([registered], `http://${host}:${presented}${after}`)).toBe(true)
    }))
  })

  it("on loopback the host, path and query stay exact", () => {
    fc.assert(fc.property(loopbackHost, loopbackHost, port, rest, rest, (host, otherHost, presented, after, otherRest) => {
      fc.pre(host !== otherHost || after !== otherRest)
      const registered = `http://${host}${after}`
      expect(matchRedirectUri([registered], `http://${otherHost}:${presented}${otherRest}`)).toBe(false)
    }))
  })

  it("anything not loopback http matches only the exact string: another port, path, query, scheme or case is refused", () => {
    fc.assert(fc.property(webHost, optionalPort, port, rest, (host, registeredPort, presented, after) => {
      const registered = `https://${host}${registeredPort}${after}`
      expect(matchRedirectUri([registered], registered)).toBe(true)
      const variants = [
        `https://${host}:${presented}${after}`,
        `http://${host}${registeredPort}${after}`,
        `https://${host.toUpperCase()}${registeredPort}${after}`,
        `https://${host}${registeredPort}${after}/x`,
        `https://${host}${registeredPort}${after}${after.includes("?") ? "&" : "?"}extra=1`,
        `https://${host}${registeredPort}${after}#frag`
      ].filter((v) => v !== registered)
      for (const variant of variants) expect(matchRedirectUri([registered], variant)).toBe(false)
    }))
  })

  it("private-use schemes match exactly only", () => {
    fc.assert(fc.property(webHost, rest, port, (host, after, presented) => {
      const scheme = host.split(".").reverse().join(".")
      const registered = `${scheme}:${after === "" ? "/cb" : after}`
      expect(redirectUriProblem(registered, "public")).toBeUndefined()
      expect(matchRedirectUri([registered], registered)).toBe(true)
      expect(matchRedirectUri([registered], `${registered}x`)).toBe(false)
      expect(matchRedirectUri([`cursor://${host}${after}`], `cursor://${host}:${presented}${after}`)).toBe(false)
    }))
  })

  it("whatever two strings are, a match is the exact string or the loopback port rule", () => {
    const uri = fc.oneof(
      fc.tuple(loopbackHost, optionalPort, rest).map(([h, p, r]) => `http://${h}${p}${r}`),
      fc.tuple(webHost, optionalPort, rest).map(([h, p, r]) => `https://${h}${p}${r}`),
      fc.string({ maxLength: 40 }),
      fc.webUrl({ withQueryParameters: true, withFragments: true })
    )
    const withoutPort = (u: string) => u.replace(/^(http:\/\/(?:127\.\d+\.\d+\.\d+|\[::1\]|localhost))(?::\d+)?/, "$1")
    fc.assert(fc.property(uri, uri, (registered, requested) => {
      if (!matchRedirectUri([registered], requested)) return
      if (registered === requested) return
      expect(requested.startsWith("http://")).toBe(true)
      expect(withoutPort(requested)).toBe(withoutPort(registered))
      expect(requested).not.toContain("#")
      expect(requested).not.toContain("@")
    }))
  })

  it("a port-rule match never reaches another host (user info, backslashes, bad ports)", () => {
    const registered = ["http://127.0.0.1/cb"]
    for (
      const requested of [
        "http://127.0.0.1:80@evil.example/cb",
        "http://127.0.0.1:5\\@evil.example/cb",
        "http://127.0.0.1.evil.example/cb",
        "http://127.0.0.1:0/cb",
        "http://127.0.0.1:65536/cb",
        "http://127.0.0.1:8080/cb#x",
        "https://127.0.0.1:8080/cb"
      ]
    ) expect(matchRedirectUri(registered, requested)).toBe(false)
  })
})

describe("redirect URIs a client may register", () => {
  const dangerous = fc.constantFrom("javascript", "vbscript", "data", "file", "blob", "about", "filesystem", "view-source")
  const anyCase = (s: string) => fc.array(fc.boolean(), { minLength: s.length, maxLength: s.length })
    .map((flags) => [...s].map((c, i) => (flags[i] === true ? c.toUpperCase() : c)).join(""))

  it("dangerous schemes are refused for every client, in any letter case", () => {
    fc.assert(fc.property(dangerous.chain(anyCase), fc.string({ maxLength: 20 }), fc.constantFrom("public" as const, "confidential" as const), (scheme, body, kind) => {
      const uri = `${scheme}:${body}`
      if (!URL.canParse(uri)) return
      expect(redirectUriProblem(uri, kind)).toBeDefined()
    }))
  })

  it("http is loopback only; https anywhere; private-use schemes only for public clients", () => {
    fc.assert(fc.property(webHost, rest, (host, after) => {
      expect(redirectUriProblem(`http://${host}${after}`, "public")).toBeDefined()
      expect(redirectUriProblem(`https://${host}${after}`, "confidential")).toBeUndefined()
      const native = `${host.split(".").reverse().join(".")}:/cb`
      expect(redirectUriProblem(native, "public")).toBeUndefined()
      expect(redirectUriProblem(native, "confidential")).toBeDefined()
    }))
    for (const uri of ["cursor://anysphere.cursor-retrieval/oauth/user-callback", "vscode://vscode.github-authentication/did-authenticate"]) {
      expect(redirectUriProblem(uri, "public")).toBeUndefined()
    }
    for (const uri of ["https://app.example/cb#f", "https://u:p@app.example/cb", "relative/cb", "ws://127.0.0.1/cb", "ftp://127.0.0.1/cb"]) {
      expect(redirectUriProblem(uri, "public")).toBeDefined()
    }
  })
})
