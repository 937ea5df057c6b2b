import { Clock, Duration, Effect, Option } from "effect"
import type { RegisteredClient } from "../schema/client.ts"
import type { NewClient } from "../services/ClientStore.ts"
import type { Crypto } from "../services/Crypto.ts"

/** The stored form of a new client: its secret replaced by the secret's lookup hash, its `ttl` by an `expiresAt`. */
export const newClient = (crypto: Crypto.Service, input: NewClient, now: number): Effect.Effect<RegisteredClient> =>
  Effect.map(
    input.clientSecret === undefined ? Effect.succeed(undefined) : crypto.hash(input.clientSecret),
    (clientSecretHash) => ({
      clientId: input.clientId,
      ...(clientSecretHash === undefined ? {} : { clientSecretHash }),
      clientIdIssuedAt: Math.floor(now / 1000),
      clientSecretExpiresAt: input.clientSecretExpiresAt ?? 0,
      metadata: input.metadata,
      ...(input.ttl === undefined ? {} : { expiresAt: now + Math.max(0, Duration.toMillis(Duration.decode(input.ttl))) })
    })
  )

/** Whether a stored client is still served at `now` (records without `expiresAt` always are). */
export const isLiveClient = (client: RegisteredClient, now: number): boolean =>
  client.expiresAt === undefined || now < client.expiresAt

/** The client, when it is still served at `now`. */
export const liveClient = (client: Option.Option<RegisteredClient>, now: number): Option.Option<RegisteredClient> =>
  Option.filter(client, (c) => isLiveClient(c, now))

/** The client when `secret` matches its unexpired secret, compared in constant time. */
export const authenticateClient = (
  crypto: Crypto.Service,
  client: Option.Option<RegisteredClient>,
  secret: string
): Effect.Effect<Option.Option<RegisteredClient>> =>
  Effect.gen(function*() {
    const hash = yield* crypto.hash(secret)
    const now = yield* Clock.currentTimeMillis
    return Option.filter(liveClient(client, now), (c) =>
      c.clientSecretHash !== undefined &&
      crypto.timingSafeEqual(c.clientSecretHash, hash) &&
      (c.clientSecretExpiresAt === 0 || now < c.clientSecretExpiresAt * 1000))
  })
