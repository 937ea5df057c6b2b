/**
 * The real server in a child process (`node --import tsx src/main.ts`), as
 * `npm start` runs it: started with the environment a test gives, ready once
 * it logs `listening`, stopped with a signal. Its JSON log lines are kept so
 * tests can read them (and check that no secret is in them); a long run (the
 * load bench) sends them to a file instead (`logFile`).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { closeSync, mkdtempSync, openSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "./redisServer.ts"

const ROOT = join(import.meta.dirname, "..", "..")

export interface ServerProcess {
  /** The base URL (`PUBLIC_URL`). */
  readonly url: string
  readonly port: number
  readonly dataDir: string
  /** Every stdout line so far (JSON log lines); with `logFile`, read back from that file on each call. */
  readonly lines: () => ReadonlyArray<string>
  /** Every stderr line so far. */
  readonly errors: () => ReadonlyArray<string>
  /** Send `signal` (default SIGTERM) and wait for the exit; resolves with the exit code. */
  readonly stop: (signal?: NodeJS.Signals) => Promise<number | null>
  /** Send `signal` without waiting (e.g. SIGHUP). */
  readonly signal: (signal: NodeJS.Signals) => void
  /** The process id (for measuring its CPU time). */
  readonly pid: number
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>
}

export interface StartOptions {
  /** Extra environment; PORT, HOST, DATA_DIR, STORE default to a free port, 127.0.0.1, a temp dir, memory. */
  readonly env?: Readonly<Record<string, string>>
  /** Milliseconds to wait for `listening` (default 30 s: tsx compiles on first start). */
  readonly timeout?: number
  /**
   * Append stdout to this file (the child writes it directly) instead of keeping its lines in this
   * process: for runs of many requests. The log may then be filtered (`LOG_LEVEL`), so the server
   * is ready once its metadata answers 200 rather than once it logs `listening`. stderr is kept as usual.
   */
  readonly logFile?: string
  /** Node options placed before `--import tsx` (e.g. `--cpu-prof`). */
  readonly nodeOptions?: ReadonlyArray<string>
  /** Another program to run instead of `src/main.ts` (an example): ready once its metadata answers 200. */
  readonly entry?: string
}

/** The environment of a test server: the parent's minus anything that would change its configuration. */
const baseEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(RS_TOKENS_|REDIS_|UPSTREAM_|API_KEYS|DEV_AUTO_APPROVE|PUBLIC_URL|SQLITE_PATH|STORE|SCOPES|ACCESS_TOKEN_|MAX_BODY_BYTES|LOG_LEVEL|TRUST_PROXY|REGISTER_|AUTHORIZE_|SIGN_IN_|DPOP_|METRICS|OTEL_)/.test(name)) {
      env[name] = value
    }
  }
  return env
}

/** `node [nodeOptions] --import tsx src/main.ts`, stdout piped or (with `logFile`) appended to the file by the child itself. */
const spawnMain = (env: Record<string, string>, options: StartOptions): ChildProcess => {
  const stdout = options.logFile === undefined ? "pipe" : openSync(options.logFile, "a")
  try {
    return spawn(process.execPath, [...(options.nodeOptions ?? []), "--import", "tsx", options.entry ?? "src/main.ts"], {
      cwd: ROOT,
      env,
      stdio: ["ignore", stdout, "pipe"]
    })
  } finally {
    if (typeof stdout === "number") closeSync(stdout)
  }
}

const readLines = (file: string): ReadonlyArray<string> => {
  try {
    return readFileSync(file, "utf8").split("\n").filter((line) => line.length > 0)
  } catch {
    return []
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** The address the server listens on, for this process to reach it (not `PUBLIC_URL`: that may name another instance). */
const boundUrl = (host: string, port: number): string =>
  `http://${host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host}:${port}`

/** Poll the metadata endpoint until it answers 200 (true) or `settled()` (false). */
const answering = async (url: string, settled: () => boolean): Promise<boolean> => {
  while (!settled()) {
    try {
      const response = await fetch(`${url}/.well-known/oauth-authorization-server`)
      await response.arrayBuffer()
      if (response.status === 200) return true
    } catch {
      // not listening yet
    }
    await sleep(200)
  }
  return false
}

/** Start the server; rejects (with its output) when it exits or stays silent instead of listening. */
export const startServer = async (options: StartOptions = {}): Promise<ServerProcess> => {
  const port = options.env?.["PORT"] === undefined ? await freePort() : Number(options.env["PORT"])
  const dataDir = options.env?.["DATA_DIR"] ?? mkdtempSync(join(tmpdir(), "mcp-server-"))
  const env: Record<string, string> = { ...baseEnv(), STORE: "memory", HOST: "127.0.0.1", ...options.env, PORT: String(port), DATA_DIR: dataDir }
  const child = spawnMain(env, options)
  const logFile = options.logFile
  const out: Array<string> = []
  const err: Array<string> = []
  const lines = () => logFile === undefined ? out : readLines(logFile)
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  let settled = false
  const ready = new Promise<void>((resolve, reject) => {
    const settle = (error?: Error) => {
      settled = true
      clearTimeout(timer)
      if (error === undefined) resolve()
      else reject(error)
    }
    const timer = setTimeout(
      () => settle(new Error(`server did not listen within the timeout\n${lines().join("\n")}\n${err.join("\n")}`)),
      options.timeout ?? 30_000
    )
    if (logFile === undefined) {
      let buffered = ""
      child.stdout?.on("data", (chunk: Buffer) => {
        buffered += chunk.toString("utf8")
        const parts = buffered.split("\n")
        buffered = parts.pop() ?? ""
        for (const line of parts) {
          out.push(line)
          if (options.entry === undefined && line.includes("\"message\":\"listening\"")) settle()
        }
      })
    }
    if (logFile !== undefined || options.entry !== undefined) {
      void answering(boundUrl(env["HOST"] ?? "127.0.0.1", port), () => settled).then((ok) => ok && settle())
    }
    child.stderr?.on("data", (chunk: Buffer) => err.push(...chunk.toString("utf8").split("\n").filter((l) => l.length > 0)))
    void exited.then((code) => settle(new Error(`server exited with ${code} before listening\n${lines().join("\n")}\n${err.join("\n")}`)))
  })
  // A server that did not come up is not left behind.
  await ready.catch((error: unknown) => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    throw error
  })
  const url = env["PUBLIC_URL"] ?? `http://127.0.0.1:${port}`
  return {
    url,
    port,
    dataDir,
    lines,
    errors: () => err,
    exited,
    signal: (signal) => void child.kill(signal),
    pid: child.pid ?? 0,
    stop: (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    }
  }
}
