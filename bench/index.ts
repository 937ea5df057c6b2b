/**
 * `npm run bench`: every bench module, in import order. A module registers
 * itself when imported, so adding one is one import line below.
 * `npm run bench -- memory` runs only the modules named.
 */
import { cpus, loadavg } from "node:os"
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

/**
 * The machine's load averages (1, 5 and 15 minutes), printed before the first section and after each: how busy
 * the machine was while the figures were taken. The bench's own work counts in them (about 1 while a section
 * runs; more in the load section, where a server, autocannon and the libuv pool share the cores).
 */
const load = (): string => loadavg().map((n) => n.toFixed(2)).join(" / ")
console.log(`Load average before the first section: ${load()}`)
console.log("")

for (const module of selected) {
  const started = process.hrtime.bigint()
  const section = await module.run()
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  console.log(section)
  console.log(`(${module.name}: ${seconds.toFixed(1)} s; load average after it: ${load()})`)
  console.log("")
}
