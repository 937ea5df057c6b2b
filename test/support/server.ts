/**
 * The real server in a child process (`node --import tsx src/main.ts`), as
 * `npm start` runs it: started with the environment a test gives, ready once
 * it logs `listening`, stopped with a signal. Its JSON log lines are kept so
 * tests can read them (and check that no secret is in them).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "./redisServer.ts"

const ROOT = join(import.meta.dirname, "..", "..")

export interface ServerProcess {
  /** The base URL (`PUBLIC_URL`). */
  readonly url: string
  readonly port: number
  readonly dataDir: string
  /** Every stdout line so far (JSON log lines). */
  readonly lines: () => ReadonlyArray<string>
  /** Every stderr line so far. */
  readonly errors: () => ReadonlyArray<string>
  /** Send `signal` (default SIGTERM) and wait for the exit; resolves with the exit code. */
  readonly stop: (signal?: NodeJS.Signals) => Promise<number | null>
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>
}

export interface StartOptions {
  /** Extra environment; PORT, HOST, DATA_DIR, STORE default to a free port, 127.0.0.1, a temp dir, memory. */
  readonly env?: Readonly<Record<string, string>>
  /** Milliseconds to wait for `listening` (default 30 s: tsx compiles on first start). */
  readonly timeout?: number
}

/** The environment of a test server: the parent's minus anything that would change its configuration. */
const baseEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(RS_TOKENS_|REDIS_|UPSTREAM_|API_KEYS|DEV_AUTO_APPROVE|PUBLIC_URL|SQLITE_PATH|STORE|SCOPES|ACCESS_TOKEN_)/.test(name)) {
      env[name] = value
    }
  }
  return env
}

/** Start the server; rejects (with its output) when it exits or stays silent instead of listening. */
export const startServer = async (options: StartOptions = {}): Promise<ServerProcess> => {
  const port = options.env?.["PORT"] === undefined ? await freePort() : Number(options.env["PORT"])
  const dataDir = options.env?.["DATA_DIR"] ?? mkdtempSync(join(tmpdir(), "mcp-server-"))
  const env: Record<string, string> = { ...baseEnv(), STORE: "memory", HOST: "127.0.0.1", ...options.env, PORT: String(port), DATA_DIR: dataDir }
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] })
  const out: Array<string> = []
  const err: Array<string> = []
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not listen within the timeout\n${out.join("\n")}\n${err.join("\n")}`)), options.timeout ?? 30_000)
    let buffered = ""
    child.stdout?.on("data", (chunk: Buffer) => {
      buffered += chunk.toString("utf8")
      const parts = buffered.split("\n")
      buffered = parts.pop() ?? ""
      for (const line of parts) {
        out.push(line)
        if (line.includes("\"message\":\"listening\"")) {
          clearTimeout(timer)
          resolve()
        }
      }
    })
    child.stderr?.on("data", (chunk: Buffer) => err.push(...chunk.toString("utf8").split("\n").filter((l) => l.length > 0)))
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code} before listening\n${out.join("\n")}\n${err.join("\n")}`))
    })
  })
  await ready
  const url = env["PUBLIC_URL"] ?? `http://127.0.0.1:${port}`
  return {
    url,
    port,
    dataDir,
    lines: () => out,
    errors: () => err,
    exited,
    stop: (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    }
  }
}
