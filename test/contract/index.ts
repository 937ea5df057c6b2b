import { clientStoreContract } from "./ClientStore.contract.ts"
import type { Backend } from "./harness.ts"
import { providerTokenStoreContract } from "./ProviderTokenStore.contract.ts"
import { rateLimiterContract } from "./RateLimiter.contract.ts"
import { replayCacheContract } from "./ReplayCache.contract.ts"
import { sessionStoreContract } from "./SessionStore.contract.ts"
import { signingKeyStoreContract } from "./SigningKeyStore.contract.ts"
import { tokenStoreContract } from "./TokenStore.contract.ts"

export type { Backend, StoreOptions, Stores } from "./harness.ts"

/** Every contract, for a backend that provides all the stores. */
export const storeContract = (backend: Backend): void => {
  tokenStoreContract(backend)
  providerTokenStoreContract(backend)
  sessionStoreContract(backend)
  clientStoreContract(backend)
  signingKeyStoreContract(backend)
  rateLimiterContract(backend)
  replayCacheContract(backend)
}
