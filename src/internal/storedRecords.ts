import { sessionExpiresAt } from "./sessionRecord.ts"
import { Keys } from "./keys.ts"
import type { RecordCounts, RecordKind, SealedRef, StoredRecord } from "../schema/storedRecord.ts"
import { RECORD_KINDS } from "../schema/storedRecord.ts"

/** The record key of a stored record (its `Keys` namespace): unique per record, the same on every backend. */
export const recordKeyOf = (record: StoredRecord): string => {
  switch (record._tag) {
    case "Transaction":
      return Keys.transaction(record.id)
    case "Code":
      return Keys.code(record.hash)
    case "AccessToken":
      return Keys.accessToken(record.hash)
    case "RefreshToken":
      return Keys.refreshToken(record.hash)
    case "Grant":
      return Keys.grant(record.record.id)
    case "ProviderTokens":
      return Keys.providerTokens(record.authorizationId, record.providerId)
    case "Session":
      return Keys.session(record.session.id)
    case "Client":
      return Keys.client(record.client.clientId)
    case "SigningKeys":
      return Keys.signingKeys
  }
}

/** When a record stops being live; `undefined` for records that never expire (clients, signing keys). */
export const expiresAtOf = (record: StoredRecord): number | undefined => {
  switch (record._tag) {
    case "Transaction":
    case "ProviderTokens":
      return record.expiresAt
    case "Code":
    case "AccessToken":
    case "RefreshToken":
    case "Grant":
      return record.record.expiresAt
    case "Session":
      return sessionExpiresAt(record.session)
    case "Client":
    case "SigningKeys":
      return undefined
  }
}

/** Live strictly before its expiry; records without one always are. */
export const isStoredLive = (record: StoredRecord, now: number): boolean => {
  const expiresAt = expiresAtOf(record)
  return expiresAt === undefined || now < expiresAt
}

/** The record key a sealed value is bound to (its additional authenticated data). */
export const sealedRecordKey = (ref: SealedRef): string => {
  switch (ref._tag) {
    case "Transaction":
      return Keys.transaction(ref.id)
    case "RefreshSuccessor":
      return Keys.refreshSuccessor(ref.hash)
    case "ProviderTokens":
      return Keys.providerTokens(ref.authorizationId, ref.providerId)
    case "SigningKeys":
      return Keys.signingKeys
  }
}

/** One sealed value of a record: where it lives and the envelope it holds now. */
export interface SealedValue {
  readonly ref: SealedRef
  readonly envelope: string
}

/** Every sealed value a record carries (none for records without secret values). */
export const sealedValuesOf = (record: StoredRecord): ReadonlyArray<SealedValue> => {
  switch (record._tag) {
    case "Transaction":
      return [{ ref: { _tag: "Transaction", id: record.id }, envelope: record.envelope }]
    case "RefreshToken":
      return record.sealedSuccessor === undefined
        ? []
        : [{ ref: { _tag: "RefreshSuccessor", hash: record.hash }, envelope: record.sealedSuccessor }]
    case "ProviderTokens":
      return [{
        ref: { _tag: "ProviderTokens", authorizationId: record.authorizationId, providerId: record.providerId },
        envelope: record.envelope
      }]
    case "SigningKeys":
      return [{ ref: { _tag: "SigningKeys" }, envelope: record.envelope }]
    default:
      return []
  }
}

/** Counts of zero for every kind. */
export const emptyCounts = (): { -readonly [K in RecordKind]: number } =>
  Object.fromEntries(RECORD_KINDS.map((kind) => [kind, 0])) as { -readonly [K in RecordKind]: number }

/** The total of every kind. */
export const totalOf = (counts: RecordCounts): number => RECORD_KINDS.reduce((sum, kind) => sum + counts[kind], 0)
