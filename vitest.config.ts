import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const exportsDir = fileURLToPath(new URL("./src/exports/", import.meta.url))

export default defineConfig({
  // The package's own name resolves to its sources in tests and examples (the published exports point at dist/).
  resolve: {
    alias: [
      { find: /^mcp-oauth-store$/, replacement: `${exportsDir}index.ts` },
      { find: /^mcp-oauth-store\/(.+)$/, replacement: `${exportsDir}$1.ts` }
    ]
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000
  }
})
