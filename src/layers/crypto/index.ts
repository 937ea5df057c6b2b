/**
 * The `Crypto` implementations: `NodeCrypto` (`node:crypto`, fastest on Node)
 * and `WebCrypto` (global WebCrypto, for Cloudflare Workers), sharing one
 * envelope format and keyring. Import `./web.ts` directly in a Workers bundle:
 * this index also pulls in `node:crypto`.
 */
export * as NodeCrypto from "./node.ts"
export * as WebCrypto from "./web.ts"
export {
  additionalData,
  ENVELOPE_VERSION,
  type Envelope,
  formatEnvelope,
  IV_BYTES,
  KID_LENGTH,
  parseEnvelope,
  TAG_BYTES
} from "./envelope.ts"
export {
  decodeKey,
  generateKey,
  KEY_BYTES,
  keyId,
  type Keyring,
  keyringConfig,
  type KeyringKey,
  type KeyringOptions,
  LOOKUP_HASH_INFO,
  makeKeyring
} from "./keyring.ts"
export { type CryptoLayers, cryptoLayers } from "./layers.ts"
