import { type ConfigError, Effect, Layer } from "effect"
import { Crypto } from "../../services/Crypto.ts"
import { generateKey, type Keyring, keyringConfig, type KeyringOptions, makeKeyring } from "./keyring.ts"

/** The layer constructors every `Crypto` implementation offers. */
export interface CryptoLayers {
  /** Over keys given as options; invalid keys fail as `ConfigError.InvalidData` naming the option. */
  readonly layer: (options: KeyringOptions) => Layer.Layer<Crypto, ConfigError.ConfigError>
  /** Over `RS_TOKENS_ENC_KEY`, `RS_TOKENS_ENC_KEYRING` and `RS_TOKENS_HASH_KEY`. */
  readonly layerConfig: Layer.Layer<Crypto, ConfigError.ConfigError>
  /** Over a fresh random key: for tests and development (nothing survives a restart). */
  readonly layerEphemeral: Layer.Layer<Crypto>
}

/** Derive the three layers of an implementation from the function that builds its service over a keyring. */
export const cryptoLayers = (build: (keyring: Keyring) => Effect.Effect<Crypto.Service>): CryptoLayers => {
  const layer = (options: KeyringOptions) => Layer.effect(Crypto, Effect.flatMap(makeKeyring(options), build))
  return {
    layer,
    layerConfig: Layer.unwrapEffect(Effect.map(keyringConfig, layer)),
    layerEphemeral: Layer.unwrapEffect(Effect.map(generateKey, (activeKey) => Layer.orDie(layer({ activeKey }))))
  }
}
