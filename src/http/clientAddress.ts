/**
 * The client's address, for the per-address limits: the socket's peer by
 * default; behind proxies the operator trusts, the right-most address of
 * `X-Forwarded-For` that no trusted proxy added (never the left-most: a
 * client writes whatever it likes there, and each proxy only appends).
 *
 * Limits are kept per IPv4 address and per IPv6 /64 (one customer's
 * allocation: a host picks any address in its /64 at will); an IPv4-mapped
 * IPv6 address (`::ffff:a.b.c.d`, how a dual-stack socket reports IPv4
 * peers) is its IPv4 address.
 */
import type { HttpServerRequest } from "@effect/platform"
import { Context, Effect, Option } from "effect"
import { type IpAddress, type IpNetwork, inNetwork, parseIp, parseNetwork } from "../internal/ipAddress.ts"

/**
 * Which proxies may tell the client's address through `X-Forwarded-For`:
 * `{ hops: n }`, exactly `n` proxies always stand in front of the server
 * (the address `n` entries from the right, counting the socket's peer as
 * the first); or `{ proxies }`, the addresses and networks (`10.0.0.0/8`,
 * `2001:db8::/32`, or the names `loopback`, `private`, `linklocal`) of the
 * proxies, every hop from the right that is one of them skipped.
 */
export type TrustProxy = { readonly hops: number } | { readonly proxies: ReadonlyArray<string> }

/** The networks the names in `TrustProxy.proxies` stand for. */
const NAMED_NETWORKS: Readonly<Record<string, ReadonlyArray<string>>> = {
  loopback: ["127.0.0.0/8", "::1/128"],
  private: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
  linklocal: ["169.254.0.0/16", "fe80::/10"]
}

/** `TrustProxy` checked and parsed. */
export type TrustedProxies =
  | { readonly _tag: "None" }
  | { readonly _tag: "Hops"; readonly hops: number }
  | { readonly _tag: "Networks"; readonly networks: ReadonlyArray<IpNetwork> }

/** The most proxies `hops` may name. */
const MAX_HOPS = 16

/** Check a `TrustProxy`: the parsed form, or why it cannot be used. */
export const parseTrustProxy = (trust: TrustProxy | undefined): TrustedProxies | string => {
  if (trust === undefined) return { _tag: "None" }
  if ("hops" in trust) {
    return Number.isInteger(trust.hops) && trust.hops >= 0 && trust.hops <= MAX_HOPS
      ? trust.hops === 0 ? { _tag: "None" } : { _tag: "Hops", hops: trust.hops }
      : `the number of trusted proxies must be a whole number from 0 to ${MAX_HOPS}`
  }
  const networks: Array<IpNetwork> = []
  for (const entry of trust.proxies.map((p) => p.trim().toLowerCase()).filter((p) => p.length > 0)) {
    for (const text of NAMED_NETWORKS[entry] ?? [entry]) {
      const network = parseNetwork(text)
      if (network === undefined) return `not an address, a network or one of loopback, private, linklocal: ${entry.slice(0, 60)}`
      networks.push(network)
    }
  }
  return networks.length === 0 ? { _tag: "None" } : { _tag: "Networks", networks }
}

/**
 * The peer address a web-standard `fetch` handler was given by its host
 * (Deno's `info.remoteAddr`, Bun's `server.requestIP`, Cloudflare's
 * `CF-Connecting-IP`): a web `Request` carries none of its own.
 */
export class PeerAddress extends Context.Tag("mcp-oauth-store/PeerAddress")<PeerAddress, string>() {}

/** One `X-Forwarded-For` entry without the port some proxies add (`1.2.3.4:5678`, `[::1]:80`). */
const withoutPort = (entry: string): string => {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(entry)
  if (bracketed?.[1] !== undefined) return bracketed[1]
  const v4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(entry)
  return v4WithPort?.[1] ?? entry
}

/** The hops of a request, the socket's peer last; `undefined` for an entry that is not an address. */
const hopsOf = (forwardedFor: string | undefined, peer: string): ReadonlyArray<IpAddress | undefined> => {
  const forwarded = (forwardedFor ?? "").split(",").map((e) => e.trim()).filter((e) => e.length > 0)
  return [...forwarded.map((e) => parseIp(withoutPort(e))), parseIp(peer)]
}

/**
 * The client's address from the socket's peer and `X-Forwarded-For`, under
 * `trust`. Walking from the right, a hop is passed over only when it is a
 * trusted proxy (or within the `hops` count) and the entry that proxy wrote
 * to its left is an address; so a malformed or forged entry never becomes
 * the client, only ever the proxy that passed it on.
 */
export const resolveClientAddress = (
  trust: TrustedProxies,
  peer: string | undefined,
  forwardedFor: string | undefined
): IpAddress | undefined => {
  if (peer === undefined) return undefined
  if (trust._tag === "None") return parseIp(peer)
  const hops = hopsOf(forwardedFor, peer)
  let at = hops.length - 1
  let skipped = 0
  while (at > 0) {
    const current = hops[at]
    const trusted = current !== undefined &&
      (trust._tag === "Hops" ? skipped < trust.hops : trust.networks.some((network) => inNetwork(current, network)))
    if (!trusted || hops[at - 1] === undefined) break
    at--
    skipped++
  }
  return hops[at]
}

const hex = (group: number | undefined) => (group ?? 0).toString(16)

/** The key a per-address limit counts under: the IPv4 address, or the IPv6 /64 (`2001:db8:1:2::/64`). */
export const limitKey = (address: IpAddress | undefined): string => {
  if (address === undefined) return "unknown"
  if (address.version === 4) {
    const v = address.value
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`
  }
  return `${address.groups.slice(0, 4).map(hex).join(":")}::/64`
}

/**
 * The per-address limit key of a request: its peer (the socket's, or the
 * one a `fetch` host gave as `PeerAddress`) and, under `trust`, its
 * `X-Forwarded-For`. `unknown` when no peer address is known: every such
 * request then shares one budget.
 */
export const clientAddressKey = (
  request: HttpServerRequest.HttpServerRequest,
  trust: TrustedProxies
): Effect.Effect<string> =>
  Effect.map(Effect.serviceOption(PeerAddress), (given) => {
    const peer = Option.getOrUndefined(Option.orElse(request.remoteAddress, () => given))
    return limitKey(resolveClientAddress(trust, peer, request.headers["x-forwarded-for"]))
  })
