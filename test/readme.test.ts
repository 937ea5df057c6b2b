import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"
import { promisify } from "node:util"
import { describe, expect, it } from "@effect/vitest"

const root = new URL("..", import.meta.url)

describe("README", () => {
  it("shows examples/quickstart.ts as it is", () => {
    const readme = readFileSync(new URL("README.md", root), "utf8")
    const example = readFileSync(new URL("examples/quickstart.ts", root), "utf8")
    expect(readme).toContain("```ts\n" + example + "```")
  })

  it("shows the consumer's hand-written Worker as it is (the package test bundles and runs that file)", () => {
    const readme = readFileSync(new URL("README.md", root), "utf8")
    const worker = readFileSync(new URL("test/fixtures/consumer/src/mcpWorker.ts", root), "utf8")
    expect(readme).toContain("```ts\n" + worker + "```")
  })

  it("its example runs as written and prints what the README says", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "examples/quickstart.ts"], {
      cwd: root.pathname
    })
    expect(stdout.trim()).toBe(JSON.stringify({ first: "Consumed", second: "Replayed", sessionFound: true }))
    expect(readFileSync(new URL("README.md", root), "utf8")).toContain(stdout.trim())
  })
})
