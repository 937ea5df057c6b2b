/**
 * The client's address for the per-address limits: the socket's peer unless
 * proxies are trusted; behind them, the right-most `X-Forwarded-For` entry no
 * trusted proxy added, never an entry the client wrote; IPv6 counted per /64;
 * `TRUST_PROXY` as the environment gives it; and the address a `fetch` host
 * hands over (`PeerAddress`), as `HttpServerRequest.remoteAddress` is empty on
 * a web `Request` and the socket's on platform-node.
 */
import { HttpServerRequest } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, FastCheck, Option } from "effect"
import { clientAddressKey, limitKey, parseTrustProxy, PeerAddress, resolveClientAddress, type TrustedProxies, type TrustProxy } from "../../src/http/clientAddress.ts"
import { parseTrustProxySetting } from "../../src/server/limitsConfig.ts"

const trusted = (trust: TrustProxy | undefined): TrustedProxies => {
  const parsed = parseTrustProxy(trust)
  if (typeof parsed === "string") throw new Error(parsed)
  return parsed
}

/** The limit key a request from `peer` with this `X-Forwarded-For` counts under. */
const keyOf = (trust: TrustProxy | undefined, peer: string | undefined, forwardedFor?: string) =>
  limitKey(resolveClientAddress(trusted(trust), peer, forwardedFor))

describe("the client address", () => {
  it("is the socket's peer by default, whatever X-Forwarded-For says", () => {
    expect(keyOf(undefined, "203.0.113.7", "198.51.100.1")).toBe("203.0.113.7")
    expect(keyOf({ hops: 0 }, "203.0.113.7", "198.51.100.1")).toBe("203.0.113.7")
    expect(keyOf({ proxies: [] }, "203.0.113.7", "198.51.100.1")).toBe("203.0.113.7")
    // A dual-stack socket reports IPv4 peers IPv4-mapped.
    expect(keyOf(undefined, "::ffff:127.0.0.1")).toBe("127.0.0.1")
    expect(keyOf(undefined, undefined)).toBe("unknown")
  })

  it("counts IPv6 per /64: any address a host picks in its /64 is the same client", () => {
    expect(keyOf(undefined, "2001:db8:1:2::1")).toBe("2001:db8:1:2::/64")
    expect(keyOf(undefined, "2001:db8:1:2:aaaa:bbbb:cccc:dddd")).toBe("2001:db8:1:2::/64")
    expect(keyOf(undefined, "2001:db8:1:3::1")).toBe("2001:db8:1:3::/64")
  })

  it("behind trusted proxies: the right-most entry no trusted proxy added", () => {
    const proxies = { proxies: ["10.0.0.0/8", "loopback"] }
    // Client -> 10.1.1.1 -> 10.2.2.2 -> us: the left-most entry is whatever the client claimed.
    expect(keyOf(proxies, "10.2.2.2", "6.6.6.6, 198.51.100.9, 10.1.1.1")).toBe("198.51.100.9")
    expect(keyOf(proxies, "127.0.0.1", "198.51.100.9")).toBe("198.51.100.9")
    // Not through a trusted proxy: the header is ignored.
    expect(keyOf(proxies, "198.51.100.20", "6.6.6.6")).toBe("198.51.100.20")
    // All hops trusted: the left-most.
    expect(keyOf(proxies, "10.2.2.2", "10.1.1.1")).toBe("10.1.1.1")
    // Ports and brackets some proxies add.
    expect(keyOf(proxies, "10.2.2.2", "198.51.100.9:4711")).toBe("198.51.100.9")
    expect(keyOf(proxies, "10.2.2.2", "[2001:db8::5]:443")).toBe("2001:db8:0:0::/64")
    // A malformed entry written by a trusted proxy is not a client: the proxy is.
    expect(keyOf(proxies, "10.2.2.2", "unknown")).toBe("10.2.2.2")
    expect(keyOf(proxies, "10.2.2.2", "198.51.100.9, garbage, 10.1.1.1")).toBe("10.1.1.1")
  })

  it("with a hop count: the entry that many hops back, never further than the header goes", () => {
    expect(keyOf({ hops: 1 }, "10.0.0.1", "6.6.6.6, 198.51.100.9")).toBe("198.51.100.9")
    expect(keyOf({ hops: 2 }, "10.0.0.1", "6.6.6.6, 198.51.100.9, 10.0.0.2")).toBe("198.51.100.9")
    expect(keyOf({ hops: 3 }, "10.0.0.1", "198.51.100.9")).toBe("198.51.100.9")
    expect(keyOf({ hops: 1 }, "10.0.0.1")).toBe("10.0.0.1")
  })

  it("whatever a client writes in X-Forwarded-For, it cannot pick its own address past the proxies", () => {
    const entry = FastCheck.oneof(FastCheck.ipV4(), FastCheck.ipV6(), FastCheck.string({ maxLength: 20 }))
    FastCheck.assert(
      // A client inside a trusted network looks like one more proxy: the property is for clients outside them.
      FastCheck.property(FastCheck.array(entry, { maxLength: 6 }), FastCheck.ipV4().filter((ip) => !ip.startsWith("10.")), (forged, real) => {
        // The client at `real` sent `forged`; one trusted proxy (10.9.9.9) appended `real`.
        const header = [...forged, real].join(", ")
        return keyOf({ proxies: ["10.0.0.0/8"] }, "10.9.9.9", header) === limitKey(resolveClientAddress(trusted(undefined), real, undefined)) &&
          keyOf({ hops: 1 }, "10.9.9.9", header) === keyOf(undefined, real)
      }),
      { numRuns: 1000 }
    )
  })

  it("refuses unusable proxy settings with a reason", () => {
    expect(parseTrustProxy({ proxies: ["10.0.0.0/33"] })).toMatch(/not an address/)
    expect(parseTrustProxy({ proxies: ["proxy.example"] })).toMatch(/not an address/)
    expect(parseTrustProxy({ hops: -1 })).toMatch(/whole number/)
    expect(parseTrustProxy({ hops: 1.5 })).toMatch(/whole number/)
  })

  it("TRUST_PROXY: empty or 0 is off, a number is hops, else a list; a bad entry names itself", () => {
    expect(Either.getOrThrow(parseTrustProxySetting("TRUST_PROXY", ""))).toEqual(Option.none())
    expect(Either.getOrThrow(parseTrustProxySetting("TRUST_PROXY", "0"))).toEqual(Option.none())
    expect(Either.getOrThrow(parseTrustProxySetting("TRUST_PROXY", "2"))).toEqual(Option.some({ hops: 2 }))
    expect(Either.getOrThrow(parseTrustProxySetting("TRUST_PROXY", "loopback, 10.0.0.0/8, fd00::/8"))).toEqual(
      Option.some({ proxies: ["loopback", "10.0.0.0/8", "fd00::/8"] })
    )
    const refused = parseTrustProxySetting("TRUST_PROXY", "loopback,nonsense")
    expect(Either.isLeft(refused) && String(refused.left)).toContain("nonsense")
  })

  it.effect("of a web Request: none of its own (HttpServerRequest.remoteAddress is empty), the fetch host's PeerAddress when given", () =>
    Effect.gen(function*() {
      const request = HttpServerRequest.fromWeb(new Request("https://auth.example/register", { headers: { "x-forwarded-for": "6.6.6.6" } }))
      expect(Option.isNone(request.remoteAddress)).toBe(true)
      expect(yield* clientAddressKey(request, trusted(undefined))).toBe("unknown")
      expect(yield* clientAddressKey(request, trusted(undefined)).pipe(Effect.provideService(PeerAddress, "198.51.100.4"))).toBe("198.51.100.4")
      const proxied = yield* clientAddressKey(request, trusted({ proxies: ["loopback"] })).pipe(Effect.provideService(PeerAddress, "127.0.0.1"))
      expect(proxied).toBe("6.6.6.6")
    }))
})
