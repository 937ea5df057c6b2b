import * as esbuild from "esbuild"
import { builtinModules } from "node:module"

/** Any Node built-in, with or without `node:`: a Worker bundle must contain none. */
const nodeBuiltin = new RegExp(`^(node:.*|${builtinModules.map((m) => m.replace(/[/]/g, "\\/")).join("|")})$`)

/** Fails the build at the first import of a Node built-in, naming it and its importer. */
const noNodeBuiltins: esbuild.Plugin = {
  name: "no-node-builtins",
  setup(build) {
    build.onResolve({ filter: nodeBuiltin }, (args) => ({
      errors: [{ text: `${args.path} (imported by ${args.importer}): a Workers bundle must not use Node built-ins` }]
    }))
  }
}

/**
 * Bundle an entry for workerd: ESM, platform neutral, the `workerd` condition,
 * no Node built-ins allowed; the modules workerd provides itself
 * (`cloudflare:workers`) stay imports. `workingDir` is where packages are
 * resolved from; `metafile` adds esbuild's account of the inputs (bundle
 * composition, for the bench).
 */
export const bundleForWorkers = (entry: string, workingDir?: string, metafile = false) =>
  esbuild.build({
    entryPoints: [entry],
    metafile,
    ...(workingDir === undefined ? {} : { absWorkingDir: workingDir }),
    bundle: true,
    format: "esm",
    platform: "neutral",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["module", "main"],
    target: "es2022",
    minify: true,
    write: false,
    logLevel: "silent",
    external: ["cloudflare:*"],
    plugins: [noNodeBuiltins]
  })

/** The bundled script's text. */
export const workerScript = async (entry: string): Promise<string> => (await bundleForWorkers(entry)).outputFiles[0]?.text ?? ""
