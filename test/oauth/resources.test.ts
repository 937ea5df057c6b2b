/** RFC 8707 resource indicators: canonical comparison (RFC 3986 §6.2.2-6.2.3, trailing slash), the configured form kept. */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import fc from "fast-check"
import { canonicalResource, resolveResource, sameResource } from "../../src/oauth/resources.ts"

const CONFIGURED = ["http://127.0.0.1:8787/mcp", "http://127.0.0.1:8787"]

describe("resource indicators", () => {
  it("the same resource however a client writes it: trailing slash, default port, case of scheme and host", () => {
    for (const [a, b] of [
      ["http://127.0.0.1:8787", "http://127.0.0.1:8787/"],
      ["http://127.0.0.1:8787/mcp", "http://127.0.0.1:8787/mcp/"],
      ["https://mcp.example/mcp", "HTTPS://MCP.Example:443/mcp"],
      ["http://mcp.example", "http://mcp.example:80/"],
      ["https://mcp.example/a%7Eb", "https://mcp.example/a~b"]
    ] as const) expect(sameResource(a, b)).toBe(true)
    for (const [a, b] of [
      ["http://127.0.0.1:8787/mcp", "http://127.0.0.1:8787"],
      ["http://127.0.0.1:8787/mcp", "http://127.0.0.1:8788/mcp"],
      ["http://mcp.example/mcp", "https://mcp.example/mcp"],
      ["https://mcp.example/MCP", "https://mcp.example/mcp"],
      ["https://mcp.example/mcp?a=1", "https://mcp.example/mcp"],
      ["https://mcp.example/mcp#f", "https://mcp.example/mcp#f"]
    ] as const) expect(sameResource(a, b)).toBe(false)
  })

  it.effect("a request's resource resolves to the configured string (the token's one canonical form)", () =>
    Effect.gen(function*() {
      expect(yield* resolveResource("http://127.0.0.1:8787/", CONFIGURED)).toBe("http://127.0.0.1:8787")
      expect(yield* resolveResource("http://127.0.0.1:8787/mcp/", CONFIGURED)).toBe("http://127.0.0.1:8787/mcp")
      expect(yield* resolveResource(undefined, CONFIGURED)).toBeUndefined()
      for (const bad of ["http://127.0.0.1:8787/other", "relative", "http://127.0.0.1:8787/mcp#x", ["http://127.0.0.1:8787", "http://127.0.0.1:8787/mcp"]]) {
        expect((yield* Effect.flip(resolveResource(bad, CONFIGURED)))._tag).toBe("InvalidTarget")
      }
    }))

  it("canonical forms are idempotent and ignore any number of trailing slashes", () => {
    fc.assert(fc.property(fc.webUrl({ withQueryParameters: false, withFragments: false }), fc.integer({ min: 0, max: 3 }), (url, slashes) => {
      const canonical = canonicalResource(url)
      expect(canonical).toBeDefined()
      expect(canonicalResource(canonical ?? "")).toBe(canonical)
      expect(canonicalResource(`${url}${"/".repeat(slashes)}`)).toBe(canonical)
    }))
  })
})
