/**
 * The `requestState` of multi-round tools (protocol revision 2026-07-28): what
 * a tool remembers between rounds travels through the client, so it is sealed
 * with the server's `Crypto` (AES-256-GCM, confidential and tamper-evident),
 * bound by its additional data to the caller (subject and client) and the
 * tool, and carries its expiry, checked against Effect's `Clock`. The
 * envelope names its key, so state sealed under an older key of the keyring
 * still opens after a rotation; new state is sealed under the active key.
 */
import { Clock, Data, Effect, Predicate, Schema } from "effect"
import { seal } from "../../internal/sealed.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { StoreError } from "../../services/StoreError.ts"

/** Whom and what a state belongs to: a state opens only for the same caller and tool. */
export interface RequestStateBinding {
  readonly subject: string
  readonly clientId: string
  readonly tool: string
}

/** Why a presented `requestState` was refused (for the log; the client only learns that it was). */
export class InvalidRequestState extends Data.TaggedError("InvalidRequestState")<{
  readonly reason: "malformed" | "sealed" | "expired"
}> {}

/** Longer than any state this server mints for sane tools; refused before any decryption. */
const MAX_STATE_LENGTH = 64 * 1024

const Sealed = Schema.Struct({ state: Schema.Unknown, expiresAt: Schema.Number })
const decodeSealed = Schema.decodeUnknownOption(Schema.parseJson(Sealed))

/** The record key (additional authenticated data) of a binding: JSON, so no field can run into another. */
const recordKey = (binding: RequestStateBinding): string =>
  `mcp-request-state:${JSON.stringify([binding.subject, binding.clientId, binding.tool])}`

/** Seal `state` for the next round of `binding`'s call, valid for `ttlMillis`. */
export const sealRequestState = (
  binding: RequestStateBinding,
  state: unknown,
  ttlMillis: number
): Effect.Effect<string, StoreError, Crypto> =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const now = yield* Clock.currentTimeMillis
    return yield* seal(crypto, Sealed, { state: state ?? null, expiresAt: now + ttlMillis }, recordKey(binding), "McpRequestState.seal")
  })

/** Open a presented state: the tool's state, or `InvalidRequestState` when it is malformed, foreign, tampered or expired. */
export const openRequestState = (
  binding: RequestStateBinding,
  presented: unknown
): Effect.Effect<unknown, InvalidRequestState, Crypto> =>
  Effect.gen(function*() {
    if (typeof presented !== "string" || presented.length === 0 || presented.length > MAX_STATE_LENGTH) {
      return yield* new InvalidRequestState({ reason: "malformed" })
    }
    const crypto = yield* Crypto
    const json = yield* Effect.mapError(crypto.decrypt(presented, recordKey(binding)), () => new InvalidRequestState({ reason: "sealed" }))
    const sealed = decodeSealed(json)
    if (sealed._tag === "None" || !Predicate.isNotNullable(sealed.value)) return yield* new InvalidRequestState({ reason: "malformed" })
    if ((yield* Clock.currentTimeMillis) >= sealed.value.expiresAt) return yield* new InvalidRequestState({ reason: "expired" })
    return sealed.value.state
  })
