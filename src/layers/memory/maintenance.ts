/**
 * `StoreMaintenance` over the memory stores (and so over the file backend,
 * which persists them). Everything goes through the stores' one-value
 * state (`snapshot` / `restore`, the file format's own shape), each change in
 * one synchronous step: no other fiber runs between reading a sealed value
 * and replacing it, which is what makes a re-seal a compare-and-set here.
 */
import { Clock, Effect, Either, Option, Schema, Stream } from "effect"
import { Keys } from "../../internal/keys.ts"
import { isStoredLive } from "../../internal/storedRecords.ts"
import { isSessionLive } from "../../internal/sessionRecord.ts"
import { isLive } from "../../internal/records.ts"
import { traced } from "../../internal/traced.ts"
import { emptyCounts } from "../../internal/storedRecords.ts"
import type { RecordCounts, Reseal, StoredRecord } from "../../schema/storedRecord.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { SealedContainer, StoreMaintenance } from "../../services/StoreMaintenance.ts"
import { StoreError } from "../../services/StoreError.ts"
import { MemorySnapshot, type MemorySnapshotJson, type MemoryState } from "./state.ts"

type Rows<T> = T extends ReadonlyArray<infer E> ? Array<E> : never
type TokenParts = MemorySnapshotJson["tokens"]
type Changed = "tokens" | "providerTokens" | "sessions" | "clients" | "signingKeys"
/**
 * The snapshot with arrays this module may change (the records in them stay
 * shared and unchanged); the rest of the state (rate-limit buckets, replay
 * ids) is carried through as it is.
 */
type SnapshotParts = Omit<MemorySnapshotJson, Changed> & {
  tokens: { -readonly [K in keyof TokenParts]: Rows<TokenParts[K]> }
  providerTokens: Rows<MemorySnapshotJson["providerTokens"]>
  sessions: Rows<MemorySnapshotJson["sessions"]>
  clients: Rows<MemorySnapshotJson["clients"]>
  signingKeys: MemorySnapshotJson["signingKeys"]
}

/** What the file backend adds around the memory stores. */
export interface MemoryMaintenanceSettings {
  readonly description: string
  /** Run a change so that it is persisted (the file backend's flush policy); default: as it is. */
  readonly persisted?: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E | StoreError>
  readonly containers?: Effect.Effect<ReadonlyArray<SealedContainer>, StoreError>
  readonly size?: Effect.Effect<Option.Option<number>, StoreError>
}

const DEFAULT_PAGE = 500

/** Mutable copies of the snapshot's arrays (the records in them are immutable and shared). */
const partsOf = (snapshot: MemorySnapshotJson): SnapshotParts => ({
  ...snapshot,
  tokens: {
    transactions: [...snapshot.tokens.transactions],
    codes: [...snapshot.tokens.codes],
    accessTokens: [...snapshot.tokens.accessTokens],
    refreshTokens: [...snapshot.tokens.refreshTokens],
    grants: [...snapshot.tokens.grants]
  },
  providerTokens: [...snapshot.providerTokens],
  sessions: [...snapshot.sessions],
  clients: [...snapshot.clients],
  signingKeys: snapshot.signingKeys
})

const providerKey = (authorizationId: string, providerId: string) => Keys.providerTokens(authorizationId, providerId)

/** `StoreMaintenance` over one build of the memory stores. */
export const makeMemoryMaintenance = (
  state: MemoryState,
  settings: MemoryMaintenanceSettings
): Effect.Effect<StoreMaintenance.Service, never, Crypto> =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const decodeSnapshot = Schema.decodeUnknownEither(MemorySnapshot)
    const persisted = settings.persisted ?? (<A, E>(effect: Effect.Effect<A, E>) => effect)

    /** Replace the whole state with `parts`, in the same synchronous step as the caller's read. */
    const restore = (parts: SnapshotParts, method: string): Either.Either<void, StoreError> =>
      Either.match(decodeSnapshot(parts), {
        onLeft: (cause) =>
          Either.left(new StoreError({ reason: "Corrupt", method, description: "the state does not decode", cause })),
        onRight: (snapshot) => Either.right(state.restore(snapshot))
      })

    /** The live records of one snapshot; pending authorizations sealed as the other backends keep them. */
    const listAt = (snapshot: MemorySnapshotJson, now: number) =>
      Effect.gen(function*() {
        const records: Array<StoredRecord> = []
        for (const t of snapshot.tokens.transactions) {
          if (!isLive(t, now)) continue
          const envelope = yield* crypto.encrypt(JSON.stringify(t), Keys.transaction(t.id))
          records.push({ _tag: "Transaction", id: t.id, envelope, expiresAt: t.expiresAt })
        }
        for (const [hash, record, consumed] of snapshot.tokens.codes) records.push({ _tag: "Code", hash, record, consumed })
        for (const [hash, record] of snapshot.tokens.accessTokens) records.push({ _tag: "AccessToken", hash, record })
        for (const { hash, record, sealedSuccessor, successorHash } of snapshot.tokens.refreshTokens) {
          records.push({
            _tag: "RefreshToken",
            hash,
            record,
            ...(successorHash === undefined ? {} : { successorHash }),
            ...(sealedSuccessor === undefined ? {} : { sealedSuccessor })
          })
        }
        for (const record of snapshot.tokens.grants) records.push({ _tag: "Grant", record })
        for (const [authorizationId, providerId, sealed] of snapshot.providerTokens) {
          records.push({ _tag: "ProviderTokens", authorizationId, providerId, envelope: sealed.envelope, expiresAt: sealed.expiresAt })
        }
        for (const session of snapshot.sessions) records.push({ _tag: "Session", session })
        for (const client of snapshot.clients) records.push({ _tag: "Client", client })
        if (snapshot.signingKeys !== null) {
          records.push({ _tag: "SigningKeys", version: snapshot.signingKeys.version, envelope: snapshot.signingKeys.envelope })
        }
        return records.filter((record) => isStoredLive(record, now))
      })

    const records = (options?: { readonly pageSize?: number }) =>
      Stream.unwrap(Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const listed = yield* listAt(state.snapshot(), now)
        return Stream.fromIterable(listed).pipe(Stream.rechunk(options?.pageSize ?? DEFAULT_PAGE))
      }))

    const counts: Effect.Effect<RecordCounts, StoreError> = Effect.map(Clock.currentTimeMillis, (now) => {
      const s = state.snapshot()
      const counted = emptyCounts()
      counted.Transaction = s.tokens.transactions.filter((t) => isLive(t, now)).length
      counted.Code = s.tokens.codes.filter(([, code]) => isLive(code, now)).length
      counted.AccessToken = s.tokens.accessTokens.filter(([, record]) => isLive(record, now)).length
      counted.RefreshToken = s.tokens.refreshTokens.filter((entry) => isLive(entry.record, now)).length
      counted.Grant = s.tokens.grants.filter((grant) => isLive(grant, now)).length
      counted.ProviderTokens = s.providerTokens.filter(([, , sealed]) => isLive(sealed, now)).length
      counted.Session = s.sessions.filter((session) => isSessionLive(session, now)).length
      counted.Client = s.clients.length
      counted.SigningKeys = s.signingKeys === null ? 0 : 1
      return counted
    })

    const reseal = (batch: ReadonlyArray<Reseal>) =>
      traced("StoreMaintenance.reseal")(persisted(Effect.suspend(() => {
        const parts = partsOf(state.snapshot())
        const refresh = new Map(parts.tokens.refreshTokens.map((entry, index) => [entry.hash, index]))
        const providers = new Map(parts.providerTokens.map(([a, p], index) => [providerKey(a, p), index]))
        let changed = false
        const applied = batch.map(({ expected, next, ref }) => {
          switch (ref._tag) {
            case "RefreshSuccessor": {
              const index = refresh.get(ref.hash)
              const entry = index === undefined ? undefined : parts.tokens.refreshTokens[index]
              if (index === undefined || entry?.sealedSuccessor !== expected) return false
              parts.tokens.refreshTokens[index] = { ...entry, sealedSuccessor: next }
              return (changed = true)
            }
            case "ProviderTokens": {
              const index = providers.get(providerKey(ref.authorizationId, ref.providerId))
              const row = index === undefined ? undefined : parts.providerTokens[index]
              if (index === undefined || row === undefined || row[2].envelope !== expected) return false
              parts.providerTokens[index] = [row[0], row[1], { envelope: next, expiresAt: row[2].expiresAt }]
              return (changed = true)
            }
            case "SigningKeys": {
              if (parts.signingKeys?.envelope !== expected) return false
              parts.signingKeys = { version: parts.signingKeys.version, envelope: next }
              return (changed = true)
            }
            case "Transaction":
              // Kept open in memory (the file seals them inside its snapshot): nothing sealed to replace.
              return false
          }
        })
        if (!changed) return Effect.succeed(applied)
        return Either.match(restore(parts, "StoreMaintenance.reseal"), {
          onLeft: Effect.fail,
          onRight: () => Effect.succeed(applied)
        })
      })))

    const importRecords = (incoming: ReadonlyArray<StoredRecord>) =>
      Effect.gen(function*() {
        const method = "StoreMaintenance.importRecords"
        const now = yield* Clock.currentTimeMillis
        const live = incoming.filter((record) => isStoredLive(record, now))
        // Pending authorizations are kept open here: open them before the synchronous step.
        const transactions = new Map<string, unknown>()
        for (const record of live) {
          if (record._tag !== "Transaction") continue
          const json = yield* crypto.decrypt(record.envelope, Keys.transaction(record.id)).pipe(
            Effect.mapError((error) => new StoreError({ ...error, method }))
          )
          const parsed = yield* Effect.try({
            try: (): unknown => JSON.parse(json),
            catch: (cause) => new StoreError({ reason: "Corrupt", method, description: "a pending authorization does not decode", cause })
          })
          transactions.set(record.id, parsed)
        }
        if (live.length === 0) return
        yield* persisted(Effect.suspend(() => {
          const parts = partsOf(state.snapshot())
          const replace = <T>(list: ReadonlyArray<T>, keyOf: (item: T) => string, added: Array<T>) => {
            if (added.length === 0) return [...list]
            const keys = new Set(added.map(keyOf))
            return [...list.filter((item) => !keys.has(keyOf(item))), ...added]
          }
          const by = <Tag extends StoredRecord["_tag"]>(tag: Tag) =>
            live.filter((record): record is Extract<StoredRecord, { readonly _tag: Tag }> => record._tag === tag)

          parts.tokens.transactions = replace(
            parts.tokens.transactions,
            (t) => t.id,
            [...transactions.values()] as Array<typeof parts.tokens.transactions[number]>
          )
          parts.tokens.codes = replace(parts.tokens.codes, ([hash]) => hash, by("Code").map((r) => [r.hash, r.record, r.consumed] as const))
          parts.tokens.accessTokens = replace(parts.tokens.accessTokens, ([hash]) => hash, by("AccessToken").map((r) => [r.hash, r.record] as const))
          parts.tokens.refreshTokens = replace(
            parts.tokens.refreshTokens,
            (entry) => entry.hash,
            by("RefreshToken").map((r) => ({
              hash: r.hash,
              record: r.record,
              ...(r.successorHash === undefined ? {} : { successorHash: r.successorHash }),
              ...(r.sealedSuccessor === undefined ? {} : { sealedSuccessor: r.sealedSuccessor })
            }))
          )
          parts.tokens.grants = replace(parts.tokens.grants, (grant) => grant.id, by("Grant").map((r) => r.record))
          parts.providerTokens = replace(
            parts.providerTokens,
            ([a, p]) => providerKey(a, p),
            by("ProviderTokens").map((r) => [r.authorizationId, r.providerId, { envelope: r.envelope, expiresAt: r.expiresAt }] as const)
          )
          // Sessions are kept least recently accessed first: the global limit evicts from the front.
          parts.sessions = replace(parts.sessions, (session) => session.id, by("Session").map((r) => r.session))
            .sort((a, b) => a.lastAccessedAt - b.lastAccessedAt)
          parts.clients = replace(parts.clients, (client) => client.clientId, by("Client").map((r) => r.client))
          const keys = by("SigningKeys")
          const last = keys[keys.length - 1]
          if (last !== undefined) parts.signingKeys = { version: last.version, envelope: last.envelope }
          return restore(parts, method)
        }))
      }).pipe(traced("StoreMaintenance.importRecords"))

    /** Write the state again as it is: the file backend then seals its snapshot under the active key. */
    const resealContainers = persisted(Effect.suspend(() => restore(partsOf(state.snapshot()), "StoreMaintenance.resealContainers")))

    return {
      description: settings.description,
      records,
      counts,
      reseal,
      importRecords,
      containers: settings.containers ?? Effect.succeed([]),
      resealContainers: settings.containers === undefined ? Effect.void : resealContainers,
      size: settings.size ?? Effect.succeed(Option.none())
    } satisfies StoreMaintenance.Service
  })
