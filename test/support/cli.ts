/**
 * The command-line tool as a child process. `src/cli/main.ts` runs as is with
 * `node --import tsx`; tests that start it many times run an esbuild bundle
 * of it instead (under tsx a start costs ~2 s of CPU on these machines, the
 * bundle ~0.3 s). The bundle lives under `node_modules/.cache` so it resolves
 * the native driver (better-sqlite3) from the project, as the source does.
 */
import { build } from "esbuild"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { join } from "node:path"

const ROOT = join(import.meta.dirname, "..", "..")
const ENTRY = join(ROOT, "src", "cli", "main.ts")

/** The result of a run. */
export interface CliRun {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** How to start the tool: the bundle's path, or the source under tsx. */
export interface CliCommand {
  readonly argv: ReadonlyArray<string>
  /** Remove what building it left (the bundle's folder). */
  readonly dispose: () => void
}

/** The source under tsx, as a user of the repository runs it. */
export const sourceCli: CliCommand = { argv: ["--import", "tsx", ENTRY], dispose: () => undefined }

/** Bundle the tool once (for tests that start it many times). */
export const bundleCli = async (): Promise<CliCommand> => {
  const cache = join(ROOT, "node_modules", ".cache")
  mkdirSync(cache, { recursive: true })
  const dir = mkdtempSync(join(cache, "mcp-oauth-store-cli-"))
  const outfile = join(dir, "main.mjs")
  await build({
    entryPoints: [ENTRY],
    bundle: true,
    platform: "node",
    format: "esm",
    outfile,
    logLevel: "error",
    external: ["better-sqlite3"],
    // Bundled CommonJS packages call `require`: give the ES module one.
    banner: { js: "import { createRequire as __cliRequire } from 'node:module'; const require = __cliRequire(import.meta.url);" }
  })
  return { argv: [outfile], dispose: () => rmSync(dir, { recursive: true, force: true }) }
}

/** The parent's environment without anything that configures a store or keys. */
export const cleanEnv = (env: Readonly<Record<string, string>>): Record<string, string> => {
  const base: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(RS_TOKENS_|REDIS_|STORE|SQLITE_PATH|DATA_DIR|API_KEYS|DEV_AUTO_APPROVE|PUBLIC_URL|HOST|PORT)/.test(name)) {
      base[name] = value
    }
  }
  return { ...base, ...env }
}

export interface RunOptions {
  readonly env?: Readonly<Record<string, string>>
  /** Written to the child's stdin (closed after); without it stdin is empty. */
  readonly stdin?: string
  /** Called with the child and each complete stderr line (to kill it at some point of its progress). */
  readonly onStderrLine?: (line: string, child: ChildProcess) => void
  /** Called with the child and each complete stdout line. */
  readonly onStdoutLine?: (line: string, child: ChildProcess) => void
}

/** Run the tool with `args`; resolves when it exits (by itself or killed). */
export const runCli = (cli: CliCommand, args: ReadonlyArray<string>, options: RunOptions = {}): Promise<CliRun> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...cli.argv, ...args], {
      cwd: ROOT,
      env: cleanEnv(options.env ?? {}),
      stdio: [options.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"]
    })
    if (options.stdin !== undefined) child.stdin?.end(options.stdin)
    let stdout = ""
    let stderr = ""
    const lines = (onLine: ((line: string, child: ChildProcess) => void) | undefined) => {
      let buffered = ""
      return (chunk: string) => {
        if (onLine === undefined) return
        buffered += chunk
        const parts = buffered.split(/[\n\r]/)
        buffered = parts.pop() ?? ""
        for (const line of parts) if (line.length > 0) onLine(line, child)
      }
    }
    const outLines = lines(options.onStdoutLine)
    const errLines = lines(options.onStderrLine)
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
      outLines(chunk)
    })
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk
      errLines(chunk)
    })
    child.on("error", reject)
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
