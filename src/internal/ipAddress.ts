/**
 * IP address literals as numbers, for range checks: IPv4 as one 32-bit
 * number, IPv6 as eight 16-bit groups. Shared by the SSRF address policy
 * (`layers/clientMetadata/addresses.ts`) and the client-address resolution
 * of the server (`http/clientAddress.ts`). No Node built-in, so it runs on
 * Workers too.
 */

/** A dotted-quad IPv4 address as a 32-bit number; `undefined` when it is not one. */
export const parseV4 = (text: string): number | undefined => {
  const parts = text.split(".")
  if (parts.length !== 4) return undefined
  let value = 0
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined
    value = value * 256 + Number(part)
  }
  return value
}

/** An IPv6 address as eight 16-bit groups (an embedded dotted quad allowed at the end); `undefined` when it is not one. */
export const parseV6 = (text: string): ReadonlyArray<number> | undefined => {
  if (text.includes("%")) return undefined
  let head = text
  const tail: Array<number> = []
  const lastColon = text.lastIndexOf(":")
  if (text.slice(lastColon + 1).includes(".")) {
    const v4 = parseV4(text.slice(lastColon + 1))
    if (v4 === undefined) return undefined
    tail.push(v4 >>> 16, v4 & 0xffff)
    // "::a.b.c.d" keeps its "::"; "x:a.b.c.d" drops the separator.
    head = text.slice(0, lastColon)
    if (head.endsWith(":")) head = `${head}:`
  }
  const halves = head.split("::")
  if (halves.length > 2) return undefined
  const groups = (s: string): Array<number> | undefined => {
    if (s === "") return []
    const out: Array<number> = []
    for (const g of s.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined
      out.push(Number.parseInt(g, 16))
    }
    return out
  }
  const left = groups(halves[0] ?? "")
  const right = halves.length === 2 ? groups(halves[1] ?? "") : []
  if (left === undefined || right === undefined) return undefined
  const known = left.length + right.length + tail.length
  if (halves.length === 1) return known === 8 ? [...left, ...tail] : undefined
  if (known > 7) return undefined
  return [...left, ...Array.from({ length: 8 - known }, () => 0), ...right, ...tail]
}

/** Whether the first `bits` bits of `groups` are those of `prefix` (missing prefix groups are 0). */
export const prefixIs = (groups: ReadonlyArray<number>, prefix: ReadonlyArray<number>, bits: number): boolean => {
  for (let i = 0; i < 8; i++) {
    const width = Math.min(16, bits - i * 16)
    if (width <= 0) return true
    const mask = (0xffff << (16 - width)) & 0xffff
    if (((groups[i] ?? 0) & mask) !== ((prefix[i] ?? 0) & mask)) return false
  }
  return true
}

/** The IPv4 address in the last 32 bits of an IPv6 address. */
export const embeddedV4 = (groups: ReadonlyArray<number>): number => ((groups[6] ?? 0) * 0x10000 + (groups[7] ?? 0)) >>> 0

/** Whether the IPv6 groups are an IPv4-mapped address (`::ffff:a.b.c.d`). */
export const isV4Mapped = (groups: ReadonlyArray<number>): boolean =>
  groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff

/** Whether `address` is in the IPv4 network `network`/`bits`. */
export const inV4Network = (address: number, network: number, bits: number): boolean =>
  bits === 0 || (address >>> (32 - bits)) === (network >>> (32 - bits))

/** An address literal as parsed: IPv4 (IPv4-mapped IPv6 included) or IPv6. */
export type IpAddress =
  | { readonly version: 4; readonly value: number }
  | { readonly version: 6; readonly groups: ReadonlyArray<number> }

/**
 * Parse an address literal (IPv4, IPv6, brackets allowed); an IPv4-mapped
 * IPv6 address (`::ffff:1.2.3.4`, how a dual-stack socket reports IPv4
 * clients) is its IPv4 address. `undefined` when it is not an address.
 */
export const parseIp = (text: string): IpAddress | undefined => {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text
  const v4 = parseV4(bare)
  if (v4 !== undefined) return { version: 4, value: v4 }
  const v6 = bare.includes(":") ? parseV6(bare) : undefined
  if (v6 === undefined) return undefined
  return isV4Mapped(v6) ? { version: 4, value: embeddedV4(v6) } : { version: 6, groups: v6 }
}

/** A network: an address and a prefix length. */
export interface IpNetwork {
  readonly address: IpAddress
  readonly bits: number
}

/** Parse `address` or `address/bits` (IPv4 or IPv6); `undefined` when malformed. */
export const parseNetwork = (text: string): IpNetwork | undefined => {
  const slash = text.indexOf("/")
  const address = parseIp(slash === -1 ? text : text.slice(0, slash))
  if (address === undefined) return undefined
  const max = address.version === 4 ? 32 : 128
  if (slash === -1) return { address, bits: max }
  const bitsText = text.slice(slash + 1)
  if (!/^\d{1,3}$/.test(bitsText)) return undefined
  const written = Number(bitsText)
  // An IPv4-mapped network (`::ffff:10.0.0.0/104`) is the IPv4 network it maps.
  const mapped = address.version === 4 && parseV4(text.slice(0, slash)) === undefined
  const bits = mapped ? written - 96 : written
  return bits < 0 || bits > max ? undefined : { address, bits }
}

/** Whether `address` is in `network`. */
export const inNetwork = (address: IpAddress, network: IpNetwork): boolean => {
  if (address.version === 4 && network.address.version === 4) return inV4Network(address.value, network.address.value, network.bits)
  if (address.version === 6 && network.address.version === 6) return prefixIs(address.groups, network.address.groups, network.bits)
  return false
}
