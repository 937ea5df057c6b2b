import { Layer } from "effect"
import { NodeCrypto } from "../../src/exports/crypto/node.ts"
import * as RefreshLockMemory from "../../src/oauth/refreshLock.ts"
import { refreshLockContract } from "../contract/RefreshLock.contract.ts"

refreshLockContract({ name: "memory", make: () => RefreshLockMemory.layer.pipe(Layer.provide(NodeCrypto.layerEphemeral)) })
