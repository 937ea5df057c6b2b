import { type Config, type ConfigError, Effect, Layer } from "effect"
import { Crypto } from "../../services/Crypto.ts"
import { generateKey, type Keyring, keyringConfig, type KeyringOptions, makeKeyring } from "./keyring.ts"

/** The constructors every `Crypto` implementation offers. */
export interface CryptoConstructors {
  /** The service over keys given as options; invalid keys fail as `ConfigError.InvalidData` naming the option. */
  readonly make: (options: KeyringOptions) => Effect.Effect<Crypto.Service, ConfigError.ConfigError>
  /** `make` as a layer. */
  readonly layer: (options: KeyringOptions) => Layer.Layer<Crypto, ConfigError.ConfigError>
  /** Keys from `Config`: by default `RS_TOKENS_ENC_KEY`, `RS_TOKENS_ENC_KEYRING` and `RS_TOKENS_HASH_KEY`. */
  readonly layerConfig: (config?: Config.Config<KeyringOptions>) => Layer.Layer<Crypto, ConfigError.ConfigError>
  /** Over a fresh random key: for tests and development (nothing survives a restart). */
  readonly layerEphemeral: Layer.Layer<Crypto>
}

/** Derive the constructors of an implementation from the function that builds its service over a keyring. */
export const cryptoConstructors = (build: (keyring: Keyring) => Effect.Effect<Crypto.Service>): CryptoConstructors => {
  const make = (options: KeyringOptions) => Effect.flatMap(makeKeyring(options), build)
  const layer = (options: KeyringOptions) => Layer.effect(Crypto, make(options))
  return {
    make,
    layer,
    layerConfig: (config = keyringConfig) => Layer.unwrapEffect(Effect.map(config, layer)),
    layerEphemeral: Layer.unwrapEffect(Effect.map(generateKey, (activeKey) => Layer.orDie(layer({ activeKey }))))
  }
}
