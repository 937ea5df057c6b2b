/**
 * Which IP addresses a server-side fetch may connect to: public unicast
 * only. Everything private, loopback, link-local, unique-local, CGNAT,
 * multicast, unspecified, reserved, documentation or otherwise special
 * (IANA's special-purpose registries) is refused, for IPv4, IPv6 and IPv4
 * embedded in IPv6 (mapped, compatible, NAT64, 6to4) alike.
 */
import { embeddedV4, parseV4, parseV6, prefixIs } from "../../internal/ipAddress.ts"

/** What a fetch may reach besides public addresses. */
export interface AddressPolicy {
  /** Development: also loopback (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104), never other private ranges. */
  readonly allowLoopback?: boolean
}

type Cidr4 = readonly [number, number, string]

/** IPv4 special-purpose ranges (RFC 6890 and successors): [network, prefix length, name]. */
const NON_PUBLIC_V4: ReadonlyArray<Cidr4> = [
  [0x00000000, 8, "unspecified (this network)"],
  [0x0a000000, 8, "private"],
  [0x64400000, 10, "shared address space (CGNAT)"],
  [0x7f000000, 8, "loopback"],
  [0xa9fe0000, 16, "link-local"],
  [0xac100000, 12, "private"],
  [0xc0000000, 24, "IETF protocol assignments"],
  [0xc0000200, 24, "documentation"],
  [0xc0586300, 24, "6to4 relay anycast"],
  [0xc0a80000, 16, "private"],
  [0xc6120000, 15, "benchmarking"],
  [0xc6336400, 24, "documentation"],
  [0xcb007100, 24, "documentation"],
  [0xe0000000, 4, "multicast"],
  [0xf0000000, 4, "reserved"]
]

const inV4 = (address: number, [network, bits]: Cidr4): boolean =>
  bits === 0 || (address >>> (32 - bits)) === (network >>> (32 - bits))

const v4Problem = (address: number, policy: AddressPolicy): string | undefined => {
  const range = NON_PUBLIC_V4.find((cidr) => inV4(address, cidr))
  if (range === undefined) return undefined
  if (range[2] === "loopback" && policy.allowLoopback === true) return undefined
  return `a ${range[2]} address`
}

const v6Problem = (groups: ReadonlyArray<number>, policy: AddressPolicy): string | undefined => {
  const zeros = (n: number) => groups.slice(0, n).every((g) => g === 0)
  if (zeros(8)) return "the unspecified address"
  if (zeros(7) && groups[7] === 1) return policy.allowLoopback === true ? undefined : "a loopback address"
  // IPv4-mapped (::ffff:a.b.c.d): the IPv4 address is what is reached.
  if (zeros(5) && groups[5] === 0xffff) return v4Problem(embeddedV4(groups), policy)
  if (zeros(6)) return "an IPv4-compatible address"
  if (prefixIs(groups, [0x64, 0xff9b], 96)) return "a NAT64 address"
  if (prefixIs(groups, [0x64, 0xff9b, 0x0001], 48)) return "a local NAT64 address"
  if (prefixIs(groups, [0x0100], 64)) return "a discard-only address"
  if (prefixIs(groups, [0x2001, 0x0db8], 32)) return "a documentation address"
  if (prefixIs(groups, [0x2001], 23)) return "an IETF protocol assignment (Teredo, ORCHID, ...)"
  if (prefixIs(groups, [0x2002], 16)) return "a 6to4 address"
  if (prefixIs(groups, [0x3fff], 20)) return "a documentation address"
  if (prefixIs(groups, [0xfc00], 7)) return "a unique-local address"
  if (prefixIs(groups, [0xfe80], 10)) return "a link-local address"
  if (prefixIs(groups, [0xfec0], 10)) return "a site-local address"
  if (prefixIs(groups, [0xff00], 8)) return "a multicast address"
  // Global unicast is 2000::/3; everything else is unassigned or special.
  return prefixIs(groups, [0x2000], 3) ? undefined : "not a global unicast address"
}

/**
 * Why a fetch must not connect to `address` (an IPv4 or IPv6 literal,
 * brackets allowed), or `undefined` when it is a public unicast address (or
 * loopback under `allowLoopback`). Anything that does not parse as an IP
 * address is refused.
 */
export const addressProblem = (address: string, policy: AddressPolicy = {}): string | undefined => {
  const bare = address.startsWith("[") && address.endsWith("]") ? address.slice(1, -1) : address
  const v4 = parseV4(bare)
  if (v4 !== undefined) return v4Problem(v4, policy)
  const v6 = bare.includes(":") ? parseV6(bare) : undefined
  if (v6 === undefined) return "not an IP address"
  return v6Problem(v6, policy)
}
