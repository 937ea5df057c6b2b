/**
 * The public surface, read with the TypeScript compiler: every name a
 * package subpath exports (and every member of the namespaces it exports)
 * carries a doc comment, and no internal helper leaks out.
 */
import { describe, expect, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const root = fileURLToPath(new URL("..", import.meta.url))
const manifest = JSON.parse(readFileSync(`${root}package.json`, "utf8")) as {
  readonly exports: Record<string, string | { readonly import: string }>
}

/** Each subpath with its source entry (`dist/exports/x.js` is built from `src/exports/x.ts`). */
const entries = Object.entries(manifest.exports).flatMap(([subpath, target]) =>
  typeof target === "string" ? [] : [[subpath, `${root}${target.import.replace(/^\.\/dist\//, "src/").replace(/\.js$/, ".ts")}`] as const]
)

const program = ts.createProgram(entries.map(([, file]) => file), {
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ES2022,
  allowImportingTsExtensions: true,
  noEmit: true,
  skipLibCheck: true,
  strict: true
})
const checker = program.getTypeChecker()

const resolved = (symbol: ts.Symbol): ts.Symbol =>
  symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol

const hasDoc = (symbol: ts.Symbol): boolean =>
  ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim().length > 0 ||
  (symbol.declarations ?? []).some((declaration) => ts.getJSDocCommentsAndTags(declaration).length > 0)

/** The public names of a subpath: its exports, and the members of the module namespaces it exports. */
const publicNames = (file: string): ReadonlyArray<{ readonly name: string; readonly symbol: ts.Symbol }> => {
  const source = program.getSourceFile(file)
  const moduleSymbol = source === undefined ? undefined : checker.getSymbolAtLocation(source)
  if (moduleSymbol === undefined) throw new Error(`${file} is not a module`)
  return checker.getExportsOfModule(moduleSymbol).flatMap((exported) => {
    const target = resolved(exported)
    const isNamespace = (target.flags & ts.SymbolFlags.ValueModule) !== 0 &&
      (target.declarations ?? []).some(ts.isSourceFile)
    return isNamespace
      ? checker.getExportsOfModule(target).map((member) => ({ name: `${exported.name}.${member.name}`, symbol: resolved(member) }))
      : [{ name: exported.name, symbol: target }]
  })
}

/** Names that belong to the implementation: none may be public. */
const internal = /^(resolve[A-Z]|make[A-Z].*State$|storesContext$|tablesFor$|SWEEP_BATCH$|logDetail$|SERVER_ERROR_DESCRIPTION$|RawStorage$|mergeRefreshed$|interpretTokenResponse$|MemoryState$|MemorySnapshot)/

describe("the public API", () => {
  for (const [subpath, file] of entries) {
    it(`${subpath}: every export has a doc comment, and nothing internal is exported`, () => {
      const names = publicNames(file)
      expect(names.length).toBeGreaterThan(0)
      expect(names.filter(({ symbol }) => !hasDoc(symbol)).map(({ name }) => name)).toEqual([])
      expect(names.filter(({ name }) => internal.test(name.split(".").pop() ?? name)).map(({ name }) => name)).toEqual([])
    })
  }

  it("every backend namespace has the same constructor set: layer, layerConfig, make", () => {
    const all = new Map(entries.flatMap(([, file]) => publicNames(file)).map(({ name, symbol }) => [name, symbol]))
    for (const backend of ["MemoryStore", "SqliteStore", "FileStore", "RedisStore", "KvStore", "DurableStore", "TieredStore", "NodeCrypto", "WebCrypto"]) {
      for (const constructor of ["layer", "layerConfig", "make"]) {
        expect(all.has(`${backend}.${constructor}`), `${backend}.${constructor}`).toBe(true)
      }
    }
  })
})
