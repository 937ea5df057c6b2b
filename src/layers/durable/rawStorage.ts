import { Effect } from "effect"
import type { RawStorage } from "../../services/RawStorage.ts"
import type { Channel } from "./binding.ts"

/** Every row of every object the layer uses, as stored (the objects' own dumps, one after the other). */
export const makeRawStorage = (objects: ReadonlyArray<Channel>): RawStorage.Service => ({
  dump: Effect.map(
    Effect.forEach(objects, (channel) => channel.call("RawStorage.dump", (stub, ctx) => stub.dump(ctx))),
    (dumps) => dumps.flat()
  )
})
