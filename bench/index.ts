/**
 * `npm run bench`: every bench module, in import order. A module registers
 * itself when imported, so adding one is one import line below.
 * `npm run bench -- memory` runs only the modules named.
 */
import { cpus } from "node:os"
import { registered } from "./harness.ts"

import "./memory.ts"
import "./file.ts"
import "./redis.ts"
import "./sqlite.ts"
import "./primitives.ts"
import "./durable.ts"
import "./worker.ts"
import "./oauth.ts"
import "./dpop.ts"
import "./streams.ts"
import "./metrics.ts"
import "./load.ts"

const only = process.argv.slice(2)
const selected = registered().filter((module) => only.length === 0 || only.includes(module.name))
if (selected.length === 0) {
  console.error(`no bench module named ${only.join(", ")}; known: ${registered().map((m) => m.name).join(", ")}`)
  process.exit(1)
}

console.log("# Benchmarks")
console.log("")
console.log(`node ${process.version} | ${cpus()[0]?.model ?? "unknown CPU"} (${cpus().length} cores) | ${new Date().toISOString()}`)
console.log("")

for (const module of selected) {
  const started = process.hrtime.bigint()
  const section = await module.run()
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  console.log(section)
  console.log(`(${module.name}: ${seconds.toFixed(1)} s)`)
  console.log("")
}
