import { HttpServerResponse } from "@effect/platform"
import { Data } from "effect"
import { NO_STORE } from "../respond.ts"
import { failure, type RpcId } from "./jsonrpc.ts"

/**
 * A refusal before any method runs: an HTTP status with a JSON-RPC error
 * body (`id: null` unless the refused request's id is known). Nothing in it
 * comes from a secret.
 */
export class McpHttpError extends Data.TaggedError("McpHttpError")<{
  readonly status: number
  readonly code: number
  readonly message: string
  readonly data?: unknown
  readonly id?: RpcId
  readonly headers?: Record<string, string>
}> {}

/** A refusal as its response. */
export const refusal = (error: McpHttpError): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(failure(error.id ?? null, error.code, error.message, error.data), {
    status: error.status,
    headers: { ...NO_STORE, ...error.headers }
  })
