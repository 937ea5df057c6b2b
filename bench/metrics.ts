/**
 * What metrics cost a store operation: the same backend called the way a
 * server calls it (one `ManagedRuntime`, `runtime.runPromise` per operation),
 * instrumented (`Metrics.instrument`: a call counter, a latency histogram,
 * the outcome counters) beside the bare backend in the same run. The ratio is
 * what turning metrics on costs; with metrics off the server uses the bare
 * backend, so off costs nothing. Memory (where the store's own work is
 * smallest, so the wrapper shows most) and SQLite on a temporary file.
 */
import { Effect, Layer, ManagedRuntime } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import { Metrics } from "../src/exports/index.ts"
import * as MemoryStore from "../src/layers/memory/index.ts"
import * as SqliteStore from "../src/layers/sqlite/index.ts"
import { SessionStore } from "../src/services/SessionStore.ts"
import { TokenStore } from "../src/services/TokenStore.ts"
import { codeInput } from "./fixtures.ts"
import { type Case, formatTable, register, type RunOptions, runCases } from "./harness.ts"

const options: RunOptions = { rounds: 9, roundMs: 300, warmupMs: 200 }
/**
 * What the instrumented side may cost. The wrapper adds a fixed ~1–3 µs per
 * call on these machines (two `Clock` reads in nanoseconds, one
 * `matchCauseEffect`, a counter and a histogram update): on a memory read of
 * ~3–6 µs through `runPromise` that is up to half; on SQLite it is within the
 * noise.
 */
const AIM = { memory: 0.6, sqlite: 0.8 } as const

type Stores = TokenStore | SessionStore

/** A backend twice: bare, and instrumented, each in its own runtime over its own storage. */
const pair = (name: keyof typeof AIM, make: () => Layer.Layer<Stores>) => ({
  name,
  bare: ManagedRuntime.make(make()),
  instrumented: ManagedRuntime.make(Metrics.instrument(make(), { backend: `bench-${name}` }))
})
type Pair = ReturnType<typeof pair>

const grant = { id: "bench-grant", clientId: "client-1", subject: "user-1", scopes: ["read"] }

/** One grant and one session in each runtime, for the reads. */
const seed = async (runtime: Pair["bare"]) =>
  runtime.runPromise(Effect.gen(function*() {
    yield* (yield* TokenStore).saveGrant(grant)
    const created = yield* (yield* SessionStore).create({ apiKey: "bench-key", initialized: true })
    return created.session.id
  }))

const casesFor = async (backend: Pair): Promise<Array<Case>> => {
  const bareSession = await seed(backend.bare)
  const instrumentedSession = await seed(backend.instrumented)
  const code = (side: string, i: number) => `${backend.name}-${side}-code-${i}-${"c".repeat(24)}`
  return [
    {
      name: `${backend.name}: TokenStore.getGrant (a hit)`,
      ours: () => backend.instrumented.runPromise(Effect.flatMap(TokenStore, (store) => store.getGrant(grant.id))),
      baseline: () => backend.bare.runPromise(Effect.flatMap(TokenStore, (store) => store.getGrant(grant.id))),
      aim: AIM[backend.name]
    },
    {
      name: `${backend.name}: SessionStore.get (a hit)`,
      ours: () => backend.instrumented.runPromise(Effect.flatMap(SessionStore, (store) => store.get(instrumentedSession))),
      baseline: () => backend.bare.runPromise(Effect.flatMap(SessionStore, (store) => store.get(bareSession))),
      aim: AIM[backend.name]
    },
    {
      name: `${backend.name}: TokenStore.saveCode + consumeCode (2 calls)`,
      ours: (i) =>
        backend.instrumented.runPromise(Effect.flatMap(TokenStore, (store) =>
          Effect.zipRight(store.saveCode(code("i", i), codeInput), store.consumeCode(code("i", i))))),
      baseline: (i) =>
        backend.bare.runPromise(Effect.flatMap(TokenStore, (store) =>
          Effect.zipRight(store.saveCode(code("b", i), codeInput), store.consumeCode(code("b", i))))),
      aim: AIM[backend.name]
    }
  ]
}

const run = async (): Promise<string> => {
  const dir = mkdtempSync(join(tmpdir(), "metrics-bench-"))
  let files = 0
  const backends = [
    pair("memory", () => MemoryStore.layer().pipe(Layer.provide(NodeCrypto.layerEphemeral))),
    pair("sqlite", () =>
      SqliteStore.layer({ filename: join(dir, `store-${++files}.db`) }).pipe(Layer.provide(NodeCrypto.layerEphemeral), Layer.orDie))
  ]
  try {
    const cases: Array<Case> = []
    for (const backend of backends) cases.push(...await casesFor(backend))
    const rows = await runCases(cases, options)
    return formatTable(
      "Metrics on: instrumented stores (ours) vs the same backend bare (baseline), runPromise per op",
      rows,
      options
    )
  } finally {
    for (const backend of backends) {
      await backend.bare.dispose()
      await backend.instrumented.dispose()
    }
    rmSync(dir, { recursive: true, force: true })
  }
}

register({ name: "metrics", run })
