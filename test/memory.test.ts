import { Layer } from "effect"
import { NodeCrypto } from "../src/layers/crypto/index.ts"
import * as MemoryStore from "../src/layers/memory/index.ts"
import { storeContract } from "./contract/index.ts"

storeContract({
  name: "memory",
  make: (options) => MemoryStore.layer(options).pipe(Layer.provideMerge(NodeCrypto.layerEphemeral))
})
