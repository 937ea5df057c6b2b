import { Context } from "effect"
import { ClientStore } from "../services/ClientStore.ts"
import { ProviderTokenStore } from "../services/ProviderTokenStore.ts"
import { RateLimiter } from "../services/RateLimiter.ts"
import { RawStorage } from "../services/RawStorage.ts"
import { ReplayCache } from "../services/ReplayCache.ts"
import { SessionStore } from "../services/SessionStore.ts"
import { SigningKeyStore } from "../services/SigningKeyStore.ts"
import { TokenStore } from "../services/TokenStore.ts"

/** The record stores and store primitives every backend provides. */
export type RecordStores =
  | TokenStore
  | SessionStore
  | ProviderTokenStore
  | ClientStore
  | SigningKeyStore
  | RateLimiter
  | ReplayCache
  | RawStorage

/** One backend's implementation of each record store. */
export interface RecordStoreServices {
  readonly tokens: TokenStore.Service
  readonly providerTokens: ProviderTokenStore.Service
  readonly sessions: SessionStore.Service
  readonly clients: ClientStore.Service
  readonly signingKeys: SigningKeyStore.Service
  readonly rateLimiter: RateLimiter.Service
  readonly replayCache: ReplayCache.Service
  readonly raw: RawStorage.Service
}

/** The context a backend's layer provides, from its services: assembled in one place for every backend. */
export const storesContext = (services: RecordStoreServices): Context.Context<RecordStores> =>
  Context.make(TokenStore, services.tokens).pipe(
    Context.add(ProviderTokenStore, services.providerTokens),
    Context.add(SessionStore, services.sessions),
    Context.add(ClientStore, services.clients),
    Context.add(SigningKeyStore, services.signingKeys),
    Context.add(RateLimiter, services.rateLimiter),
    Context.add(ReplayCache, services.replayCache),
    Context.add(RawStorage, services.raw)
  )
