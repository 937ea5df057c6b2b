/**
 * What a store holds, from one pass over its records: counts per kind, how
 * many expire soon, sessions per API key (keys only as prefixes of their
 * lookup hashes), sealed values per key id, and the storage used.
 */
import { Clock, Effect, Option, Stream } from "effect"
import { keyIdOf } from "../layers/crypto/envelope.ts"
import { emptyCounts, expiresAtOf, sealedValuesOf } from "../internal/storedRecords.ts"
import { RECORD_KINDS, type RecordKind } from "../schema/storedRecord.ts"
import { Crypto } from "../services/Crypto.ts"
import { type SealedContainer, StoreMaintenance } from "../services/StoreMaintenance.ts"
import type { StoreError } from "../services/StoreError.ts"
import { formatCount } from "./progress.ts"

/** Characters of a lookup hash shown in place of an API key. */
export const HASH_PREFIX = 12

export interface StatsOptions {
  /** "Expiring soon" means within this many milliseconds (default 24 h). */
  readonly expiringWithin: number
  /** How many API keys to list by session count. */
  readonly top: number
}

export interface StatsReport {
  readonly store: string
  readonly counts: { readonly [K in RecordKind]: number }
  readonly expiringSoon: { readonly [K in RecordKind]: number }
  readonly expiringWithin: number
  /** API keys with the most sessions: the prefix of the key's lookup hash, and its live sessions. */
  readonly topKeys: ReadonlyArray<readonly [hashPrefix: string, sessions: number]>
  readonly keysWithSessions: number
  readonly sealedByKeyId: ReadonlyArray<readonly [keyId: string, values: number]>
  readonly activeKeyId: string
  readonly containers: ReadonlyArray<SealedContainer>
  readonly size: Option.Option<number>
}

/** Gather the statistics of the store in one pass. */
export const collectStats = (options: StatsOptions): Effect.Effect<StatsReport, StoreError, StoreMaintenance | Crypto> =>
  Effect.gen(function*() {
    const maintenance = yield* StoreMaintenance
    const crypto = yield* Crypto
    const now = yield* Clock.currentTimeMillis
    const counts = emptyCounts()
    const expiringSoon = emptyCounts()
    const sessionsPerKey = new Map<string, number>()
    const sealed = new Map<string, number>()
    yield* Stream.runForEach(maintenance.records(), (record) =>
      Effect.sync(() => {
        counts[record._tag]++
        const expiresAt = expiresAtOf(record)
        if (expiresAt !== undefined && expiresAt - now <= options.expiringWithin) expiringSoon[record._tag]++
        if (record._tag === "Session") {
          const key = record.session.apiKeyHash
          sessionsPerKey.set(key, (sessionsPerKey.get(key) ?? 0) + 1)
        }
        for (const value of sealedValuesOf(record)) {
          const kid = keyIdOf(value.envelope) ?? "(unreadable)"
          sealed.set(kid, (sealed.get(kid) ?? 0) + 1)
        }
      }))
    const topKeys = [...sessionsPerKey]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, options.top)
      .map(([hash, n]) => [hash.slice(0, HASH_PREFIX), n] as const)
    return {
      store: maintenance.description,
      counts,
      expiringSoon,
      expiringWithin: options.expiringWithin,
      topKeys,
      keysWithSessions: sessionsPerKey.size,
      sealedByKeyId: [...sealed].sort((a, b) => b[1] - a[1]),
      activeKeyId: crypto.activeKeyId,
      containers: yield* maintenance.containers,
      size: yield* maintenance.size
    }
  })

/** What each kind is called in reports. */
export const KIND_LABELS: { readonly [K in RecordKind]: string } = {
  Transaction: "pending authorizations",
  Code: "authorization codes",
  AccessToken: "access tokens",
  RefreshToken: "refresh tokens",
  Grant: "grants",
  ProviderTokens: "provider tokens",
  Session: "sessions",
  Client: "clients",
  SigningKeys: "signing key sets"
}

/** `12.3 MB` */
export const formatBytes = (bytes: number): string => {
  const units = ["B", "KB", "MB", "GB", "TB"]
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`
}

const hours = (millis: number): string => {
  const h = millis / 3_600_000
  return Number.isInteger(h) ? `${h} h` : `${(millis / 60_000).toFixed(0)} min`
}

/** The report as text lines. */
export const renderStats = (report: StatsReport): ReadonlyArray<string> => {
  const width = Math.max(...RECORD_KINDS.map((kind) => KIND_LABELS[kind].length))
  const lines = [`store: ${report.store}`, "", `${"records".padEnd(width)}  ${"live".padStart(9)}  expiring within ${hours(report.expiringWithin)}`]
  let total = 0
  for (const kind of RECORD_KINDS) {
    total += report.counts[kind]
    lines.push(`${KIND_LABELS[kind].padEnd(width)}  ${formatCount(report.counts[kind]).padStart(9)}  ${formatCount(report.expiringSoon[kind]).padStart(9)}`)
  }
  lines.push(`${"total".padEnd(width)}  ${formatCount(total).padStart(9)}`)
  lines.push("", `sessions per API key (${formatCount(report.keysWithSessions)} keys; shown as lookup-hash prefixes):`)
  if (report.topKeys.length === 0) lines.push("  (no sessions)")
  for (const [prefix, n] of report.topKeys) lines.push(`  ${prefix}…  ${formatCount(n)}`)
  lines.push("", `sealed values by key id (active key: ${report.activeKeyId}):`)
  if (report.sealedByKeyId.length === 0) lines.push("  (none)")
  for (const [kid, n] of report.sealedByKeyId) {
    lines.push(`  ${kid}  ${formatCount(n).padStart(9)}${kid === report.activeKeyId ? "  (active)" : "  (rekey re-seals these)"}`)
  }
  for (const container of report.containers) {
    lines.push(`  ${container.name}: sealed by ${container.keyId ?? "(unknown)"}${container.keyId === report.activeKeyId ? " (active)" : ""}`)
  }
  lines.push("", `store size: ${Option.match(report.size, { onNone: () => "unknown", onSome: formatBytes })}`)
  return lines
}
