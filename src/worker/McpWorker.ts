/**
 * The server as a Cloudflare Worker: the `fetch` handler of a Worker's main
 * module, over `McpServer.toWebHandler` with `WebCrypto` and the Durable
 * Object backend (or KV alone, the weaker option), configured from the
 * Worker's `env` (vars, secrets, bindings: see `config.ts`).
 *
 * ```ts
 * // src/index.ts, the Worker's main module (wrangler.toml: main = "src/index.ts")
 * import { McpWorker, StoreObject } from "mcp-oauth-store/worker"
 * import { myTools } from "./tools.ts"
 * export { StoreObject }                      // the Durable Object class the STORE binding runs
 * export default McpWorker.make({ tools: myTools })
 * ```
 *
 * **Once per isolate.** The runtime (the stores, `Crypto`, the signing keys
 * imported from the store, the tools) is built by the first request an
 * isolate serves and kept for the ones after it; it is never rebuilt per
 * request. What must not outlive a request is not kept: the Durable Object
 * backend takes a fresh stub for every call (a stub belongs to the request
 * that made it), and the KV binding is the `env`'s own.
 *
 * **Failures.** Settings that cannot be used answer every request with 500
 * `server_error` and log one line naming the variable (never its value). A
 * build that fails for another reason (the store unreachable while the
 * signing keys load) answers 503 `temporarily_unavailable` and is tried again
 * by the next request.
 */
import { Cause, ConfigError, Effect, Either, Layer, Logger, Option, Runtime } from "effect"
import * as WebCrypto from "../layers/crypto/web.ts"
import * as DurableStore from "../layers/durable/index.ts"
import * as KvStore from "../layers/kv/index.ts"
import * as McpServer from "../http/McpServer.ts"
import type { McpTool } from "../http/mcp/McpTool.ts"
import { StoreError } from "../services/StoreError.ts"
import { envConfigProvider, type WorkerSettings, workerConfig } from "./config.ts"

export { type WorkerSettings, workerConfig } from "./config.ts"

/** What the Worker serves beyond its `env`: the tools, and the server options no variable sets. */
export interface McpWorkerOptions {
  /** The tools `/mcp` serves. */
  readonly tools: ReadonlyArray<McpTool>
  /**
   * Server options the environment does not set (the signing keys'
   * algorithm and rotation, `serverInfo`, `instructions`, the OAuth engine's
   * other lifetimes, extra origins). `PUBLIC_URL`, `SCOPES`, `API_KEYS`,
   * `DEV_AUTO_APPROVE`, `ACCESS_TOKEN_TTL`, `ACCESS_TOKEN_FORMAT`,
   * `MAX_BODY_BYTES`, `DPOP_NONCE`, `DPOP_PROOF_MAX_AGE` and the limits on
   * anonymous callers come from `env`; the client's address is Cloudflare's
   * `CF-Connecting-IP`.
   */
  readonly server?: Omit<
    McpServer.McpServerOptions,
    "publicUrl" | "tools" | "scopes" | "signIn" | "maxBodyBytes" | "limits" | "trustProxy" | "upstream"
  >
}

/** A Worker's main-module default export: its `fetch` handler. */
export interface McpWorkerHandler {
  readonly fetch: (request: Request, env: object) => Promise<Response>
}

/** The server's options for the settings read from `env`. */
export const serverOptions = (settings: WorkerSettings, options: McpWorkerOptions): McpServer.McpServerOptions => ({
  ...options.server,
  publicUrl: settings.publicUrl,
  tools: options.tools,
  ...(Option.isSome(settings.scopes) ? { scopes: settings.scopes.value } : {}),
  signIn: {
    apiKeys: settings.apiKeys,
    ...(Option.isSome(settings.devAutoApprove) ? { autoApprove: settings.devAutoApprove.value } : {})
  },
  oauth: {
    ...options.server?.oauth,
    accessTokenTtl: `${settings.accessTokenTtlSeconds} seconds`,
    accessTokenFormat: settings.accessTokenFormat,
    dpop: {
      ...options.server?.oauth?.dpop,
      requireNonce: settings.dpopNonce,
      proofMaxAge: `${settings.dpopProofMaxAgeSeconds} seconds`
    }
  },
  maxBodyBytes: settings.maxBodyBytes,
  limits: settings.limits
})

/**
 * The stores and `Crypto` of a Worker: the Durable Object backend on the
 * `STORE` binding (named `STORE_NAME`), or with `STORE=kv` the KV backend on
 * the `TOKENS` binding; `WebCrypto` with `RS_TOKENS_ENC_KEY` (and
 * `RS_TOKENS_ENC_KEYRING`, `RS_TOKENS_HASH_KEY`) from `env`; JSON log lines
 * at `LOG_LEVEL`.
 */
export const storesLayer = (settings: WorkerSettings, env: object) => {
  const stores = settings.store === "durable"
    ? DurableStore.layerEnv(env, { name: settings.storeName })
    // KV's own TTLs free its storage: no sweep fiber listing keys in the background of an isolate.
    : KvStore.layerEnv(env, { sweepKv: false })
  const logging = Layer.merge(Logger.json, Logger.minimumLogLevel(settings.logLevel))
  const built = Layer.effectDiscard(Effect.logInfo("stores ready").pipe(Effect.annotateLogs({ module: "McpWorker", store: settings.store })))
  return built.pipe(
    Layer.provideMerge(stores.pipe(Layer.provideMerge(WebCrypto.layerConfig()))),
    Layer.provideMerge(logging),
    Layer.provide(Layer.setConfigProvider(envConfigProvider(env)))
  )
}

/** What an isolate keeps between requests. */
type Served =
  | { readonly _tag: "Misconfigured"; readonly line: string }
  | {
    readonly _tag: "Serving"
    readonly handler: (request: Request, info?: McpServer.RequestInfo) => Promise<Response>
    readonly dispose: () => Promise<void>
  }

const logged = Logger.json

const logError = (message: string, annotations: Record<string, unknown>): void =>
  Effect.runSync(Effect.logError(message).pipe(Effect.annotateLogs(annotations), Effect.provide(logged)))

const oauthError = (status: number, error: string, description: string, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ error, error_description: description }), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store", ...headers }
  })

/** Why a build failed, in one line with no value or secret: the variable, or the store's reason and method. */
const describeBuildFailure = (
  error: unknown
): { readonly line: string; readonly unavailable: boolean; readonly permanent: boolean } => {
  const cause = Runtime.isFiberFailure(error) ? error[Runtime.FiberFailureCauseId] : Cause.die(error)
  const failure = Option.getOrUndefined(Cause.failureOption(cause))
  if (ConfigError.isConfigError(failure)) {
    return { line: `invalid configuration: ${String(failure)}`, unavailable: false, permanent: true }
  }
  if (failure instanceof StoreError) {
    return {
      line: `the store failed (${failure.reason}) in ${failure.method}`,
      unavailable: failure.reason === "Unavailable",
      permanent: false
    }
  }
  return { line: "the server could not start", unavailable: false, permanent: false }
}

/**
 * The Worker's `fetch` handler, serving `options.tools` with the settings
 * and bindings of the `env` it is called with. Export it as the main
 * module's default export, beside `StoreObject` for the Durable Object backend.
 */
export const make = (options: McpWorkerOptions): McpWorkerHandler => {
  // Per isolate: one runtime per `env` (a Worker's `env` is one object for the isolate's life).
  const isolates = new WeakMap<object, Served>()

  const serve = (env: object): Served => {
    const known = isolates.get(env)
    if (known !== undefined) return known
    const settings = Effect.runSync(Effect.either(Effect.withConfigProvider(workerConfig, envConfigProvider(env))))
    const served: Served = Either.isLeft(settings)
      ? { _tag: "Misconfigured", line: `invalid configuration: ${String(settings.left)}` }
      : { _tag: "Serving", ...McpServer.toWebHandler(serverOptions(settings.right, options), storesLayer(settings.right, env)) }
    if (served._tag === "Misconfigured") logError(served.line, { module: "McpWorker" })
    isolates.set(env, served)
    return served
  }

  return {
    fetch: async (request, env) => {
      const served = serve(env)
      if (served._tag === "Misconfigured") return oauthError(500, "server_error", "the server is misconfigured")
      try {
        // Cloudflare sets CF-Connecting-IP to the address that connected to its edge; a client cannot set it.
        return await served.handler(request, { remoteAddress: request.headers.get("cf-connecting-ip") ?? undefined })
      } catch (error) {
        // The runtime could not be built (a handler that is built answers every request itself).
        const failure = describeBuildFailure(error)
        if (isolates.get(env) === served) {
          logError(failure.line, { module: "McpWorker" })
          // Settings the variables cannot fix at runtime stay refused; anything else is tried again by the next request.
          if (failure.permanent) isolates.set(env, { _tag: "Misconfigured", line: failure.line })
          else isolates.delete(env)
          await served.dispose().catch(() => undefined)
        }
        return failure.unavailable
          ? oauthError(503, "temporarily_unavailable", "the store is unavailable; try again", { "retry-after": "1" })
          : oauthError(500, "server_error", "the server could not start")
      }
    }
  }
}
