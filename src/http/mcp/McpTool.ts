/**
 * Defining MCP tools for the server: as an Effect with an Effect Schema input
 * (`make`), or the way MCP SDK users write them, with a Standard Schema such as
 * a zod object and an async handler (`fromSdk`). Either way the server checks
 * the caller's token and the tool's scopes before the tool runs, validates the
 * arguments, seals a multi-round tool's state between rounds, and hands the
 * tool the caller's verified identity.
 *
 * ```ts
 * const greet = McpTool.make({
 *   name: "greet",
 *   description: "Greets the caller by the name the user gives.",
 *   scopes: ["mcp:tools"],
 *   run: (_input, call) =>
 *     Effect.map(McpTool.accepted(call, "name", Schema.Struct({ name: Schema.String })), (answer) =>
 *       Option.match(answer, {
 *         onNone: () => McpTool.inputRequired({ name: McpTool.elicit({ message: "Your name?", schema: Schema.Struct({ name: Schema.String }) }) }),
 *         onSome: ({ name }) => McpTool.text(`Hello, ${name}!`)
 *       }))
 * })
 * ```
 */
import { Data, Effect, JSONSchema, Option, ParseResult, Predicate, Schema } from "effect"
import { compileGuard } from "../../internal/guard.ts"
import type { InputRequest, McpToolDefinition, ToolCall, ToolOutcome, ToolResult } from "./tool.ts"

export type { ContentBlock, InputRequest, ToolCall, ToolResult } from "./tool.ts"

/** A tool, served once its requirements `R` are provided (the server's layer captures them). */
export interface McpTool<R = never> extends Omit<McpToolDefinition, "call"> {
  readonly call: (args: Readonly<Record<string, unknown>>, call: ToolCall) => Effect.Effect<ToolOutcome, never, R>
}

/** A round of questions to the client (2026-07-28), with the state to get back in the next round. */
export interface InputRequired {
  readonly _tag: "InputRequired"
  readonly inputRequests: Readonly<Record<string, InputRequest>>
  readonly state?: unknown
}

/** A failure the model should see, as a tool result with `isError` (never a protocol error). */
export class ToolFailure extends Data.TaggedError("ToolFailure")<{ readonly message: string }> {}

/** A text result. */
export const text = (value: string): ToolResult => ({ content: [{ type: "text", text: value }] })

/** A structured result: the value as `structuredContent`, and as JSON text for clients that read text only. */
export const json = (value: unknown): ToolResult => ({
  content: [{ type: "text", text: JSON.stringify(value) }],
  structuredContent: value
})

/** Ask the client for input before going on; `state` comes back (sealed, verified) as `call.state`. */
export const inputRequired = (inputRequests: Readonly<Record<string, InputRequest>>, state?: unknown): InputRequired =>
  state === undefined ? { _tag: "InputRequired", inputRequests } : { _tag: "InputRequired", inputRequests, state }

/** A generated JSON Schema as a plain record. */
const jsonSchemaOf = (schema: Schema.Schema.AnyNoContext): Record<string, unknown> => Object.fromEntries(Object.entries(JSONSchema.make(schema)))

/** The restricted JSON Schema of an elicitation form: an object of primitive fields. */
const formSchema = (schema: Schema.Schema.AnyNoContext): Readonly<Record<string, unknown>> => {
  const { $schema: _dialect, additionalProperties: _extra, ...rest } = jsonSchemaOf(schema)
  if (rest["type"] !== "object") throw new TypeError("an elicitation form must be an object schema (Schema.Struct)")
  return rest
}

/** A form elicitation (`elicitation/create`): a message and the fields the user is asked to fill in. */
export const elicit = (options: { readonly message: string; readonly schema: Schema.Schema.AnyNoContext }): InputRequest => ({
  method: "elicitation/create",
  params: { mode: "form", message: options.message, requestedSchema: formSchema(options.schema) }
})

/** A URL elicitation: the user is sent to `url` (for example to sign in somewhere) and the client reports back. */
export const elicitUrl = (options: { readonly message: string; readonly url: string }): InputRequest => ({
  method: "elicitation/create",
  params: { mode: "url", message: options.message, url: options.url }
})

/** The accepted content of the elicitation answered under `key`, decoded with `schema`; `None` if declined or absent. */
export const accepted = <A, I>(
  call: ToolCall,
  key: string,
  schema: Schema.Schema<A, I, never>
): Effect.Effect<Option.Option<A>> => {
  const answer = call.inputResponses[key]
  if (!Predicate.isRecord(answer) || answer["action"] !== "accept") return Effect.succeed(Option.none())
  return Effect.option(Schema.decodeUnknown(schema)(answer["content"]))
}

const EMPTY_INPUT: Readonly<Record<string, unknown>> = { type: "object", properties: {}, additionalProperties: false }

/** The JSON Schema of a tool's input or output: it must describe an object. */
const objectSchema = (what: string, schema: Schema.Schema.AnyNoContext): Readonly<Record<string, unknown>> => {
  const generated = jsonSchemaOf(schema)
  if (generated["type"] !== "object") throw new TypeError(`the ${what} schema of a tool must describe an object (Schema.Struct)`)
  return generated
}

/** The argument problems of a failed decode, as the model is told them. */
const inputError = (error: ParseResult.ParseError): ToolOutcome => ({
  _tag: "Complete",
  result: {
    content: [{ type: "text", text: `Input validation error: ${ParseResult.TreeFormatter.formatErrorSync(error)}` }],
    isError: true
  }
})

const failed = (failure: ToolFailure): ToolOutcome => ({
  _tag: "Complete",
  result: { content: [{ type: "text", text: failure.message }], isError: true }
})

/** Arguments that do not decode, and a `ToolFailure`, as the `isError` result the model is shown (built once, not per call). */
const toolErrors = {
  ParseError: (error: ParseResult.ParseError) => Effect.succeed(inputError(error)),
  ToolFailure: (failure: ToolFailure) => Effect.succeed(failed(failure))
}

/** How `make` describes a tool. */
export interface MakeOptions<A, I, R, O, OI> {
  readonly name: string
  readonly title?: string
  readonly description: string
  /** The arguments (an object schema); default: none. Arguments that do not decode are an `isError` result. */
  readonly input?: Schema.Schema<A, I, never>
  /** The structured output (an object schema): advertised as `outputSchema`; `structuredContent` is encoded with it. */
  readonly output?: Schema.Schema<O, OI, never>
  /** Scopes the caller's token must carry. */
  readonly scopes?: ReadonlyArray<string>
  /** MCP tool annotations (`readOnlyHint`, `destructiveHint`, `idempotentHint`, `openWorldHint`, `title`). */
  readonly annotations?: Readonly<Record<string, unknown>>
  /** The tool: a result, or (2026-07-28) a round of questions; a `ToolFailure` is shown to the model. */
  readonly run: (input: A, call: ToolCall) => Effect.Effect<ToolResult | InputRequired, ToolFailure, R>
}

/** A tool as an Effect over an Effect Schema input; it runs on the server's runtime with its services `R`. */
export const make = <A, I = A, R = never, O = never, OI = O>(options: MakeOptions<A, I, R, O, OI>): McpTool<R> => {
  const decode = options.input === undefined ? undefined : Schema.decodeUnknown(options.input)
  const encodeOutput = options.output === undefined ? undefined : Schema.encodeUnknown(options.output)
  // Output that is already in its encoded form (a plain-JSON schema, a conforming value) needs no encoding.
  const plainOutput = options.output === undefined ? undefined : compileGuard(options.output)
  const complete = (result: ToolResult): Effect.Effect<ToolOutcome> =>
    encodeOutput === undefined || result.structuredContent === undefined || result.isError === true ||
      (plainOutput !== undefined && plainOutput(result.structuredContent))
      ? Effect.succeed({ _tag: "Complete", result })
      : Effect.map(Effect.orDie(encodeOutput(result.structuredContent)), (structuredContent) => ({
        _tag: "Complete",
        result: { ...result, structuredContent }
      }))
  return {
    name: options.name,
    ...(options.title === undefined ? {} : { title: options.title }),
    description: options.description,
    inputSchema: options.input === undefined ? EMPTY_INPUT : objectSchema("input", options.input),
    ...(options.output === undefined ? {} : { outputSchema: objectSchema("output", options.output) }),
    ...(options.annotations === undefined ? {} : { annotations: options.annotations }),
    requiredScopes: options.scopes ?? [],
    call: (args, call) => {
      const input: Effect.Effect<A, ParseResult.ParseError> = decode === undefined
        ? Effect.succeed(args as A)
        : decode(args)
      return input.pipe(
        Effect.flatMap((value) => options.run(value, call)),
        Effect.flatMap((outcome): Effect.Effect<ToolOutcome, ToolFailure> =>
          "_tag" in outcome && outcome._tag === "InputRequired" ? Effect.succeed(outcome) : complete(outcome as ToolResult)
        ),
        Effect.catchTags(toolErrors)
      )
    }
  }
}

/** What a Standard Schema's `validate` returns (https://standardschema.dev). */
export type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<StandardIssue> }

/** One problem a Standard Schema found. */
export interface StandardIssue {
  readonly message: string
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined
}

/** A schema with Standard Schema validation and Standard JSON Schema conversion: zod 4, ArkType, Valibot. */
export interface StandardSchemaWithJson<Output = unknown> {
  readonly "~standard": {
    readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>
    readonly jsonSchema: { readonly input: (options: { readonly target: "draft-2020-12" }) => Record<string, unknown> }
  }
}

/** The part of the MCP SDK's handler context a tool defined with `fromSdk` receives. */
export interface SdkToolContext {
  readonly mcpReq: {
    readonly method: "tools/call"
    /** The answers to the previous round's `inputRequests` (untrusted input). */
    readonly inputResponses: Readonly<Record<string, unknown>>
    /** The `requestState` this tool returned in the previous round, verified by the server; `undefined` on a first round. */
    readonly requestState: () => unknown
  }
  readonly http: {
    /** The verified bearer token, as the SDK's `AuthInfo` (the token itself is not passed on). */
    readonly authInfo: {
      readonly clientId: string
      readonly scopes: ReadonlyArray<string>
      readonly expiresAt: number
      readonly extra: { readonly subject: string; readonly grantId: string }
    }
  }
}

/** What an SDK-style handler returns: a `CallToolResult`, or an SDK `inputRequired(...)` result. */
export type SdkToolReturn =
  | ToolResult
  | { readonly resultType: "input_required"; readonly inputRequests?: Readonly<Record<string, InputRequest>>; readonly requestState?: string }

/** How `fromSdk` describes a tool: `registerTool`'s config, plus the scopes the tool needs. */
export interface SdkToolConfig<Args extends StandardSchemaWithJson | undefined> {
  readonly title?: string
  readonly description?: string
  readonly inputSchema?: Args
  readonly outputSchema?: StandardSchemaWithJson
  readonly annotations?: Readonly<Record<string, unknown>>
  readonly scopes?: ReadonlyArray<string>
}

/** The handler of `fromSdk`: with the validated arguments when the tool has an input schema. */
export type SdkToolHandler<Args extends StandardSchemaWithJson | undefined> = Args extends StandardSchemaWithJson<infer A>
  ? (args: A, ctx: SdkToolContext) => SdkToolReturn | Promise<SdkToolReturn>
  : (ctx: SdkToolContext) => SdkToolReturn | Promise<SdkToolReturn>

const issuesText = (issues: ReadonlyArray<StandardIssue>) =>
  issues.map((issue) => {
    const path = (issue.path ?? []).map((part) => String(Predicate.isObject(part) && "key" in part ? part.key : part)).join(".")
    return path === "" ? issue.message : `${path}: ${issue.message}`
  }).join("; ")

const fromSdkReturn = (returned: SdkToolReturn): ToolOutcome =>
  "resultType" in returned && returned.resultType === "input_required"
    ? { _tag: "InputRequired", inputRequests: returned.inputRequests ?? {}, ...(returned.requestState === undefined ? {} : { state: returned.requestState }) }
    : { _tag: "Complete", result: returned as ToolResult }

/**
 * A tool the way the MCP SDK's `registerTool(name, config, handler)` takes it:
 * a Standard Schema input (a zod object, say), an async handler getting the
 * arguments and a context with the caller's `authInfo`, returning a
 * `CallToolResult` or an `inputRequired(...)` result. A thrown error is an
 * internal error (logged, never shown).
 */
export const fromSdk = <Args extends StandardSchemaWithJson | undefined = undefined>(
  name: string,
  config: SdkToolConfig<Args>,
  handler: SdkToolHandler<Args>
): McpTool => {
  const schema = config.inputSchema
  const standardJsonSchema = (standard: StandardSchemaWithJson) => {
    const { $schema: _dialect, ...generated } = standard["~standard"].jsonSchema.input({ target: "draft-2020-12" })
    if (generated["type"] !== "object") throw new TypeError(`the input schema of tool ${name} must describe an object`)
    return generated
  }
  const run = (args: unknown, ctx: SdkToolContext): Promise<SdkToolReturn> =>
    Promise.resolve(
      schema === undefined
        ? (handler as (ctx: SdkToolContext) => SdkToolReturn | Promise<SdkToolReturn>)(ctx)
        : (handler as (args: unknown, ctx: SdkToolContext) => SdkToolReturn | Promise<SdkToolReturn>)(args, ctx)
    )
  return {
    name,
    ...(config.title === undefined ? {} : { title: config.title }),
    description: config.description ?? "",
    inputSchema: schema === undefined ? EMPTY_INPUT : standardJsonSchema(schema),
    ...(config.outputSchema === undefined ? {} : { outputSchema: config.outputSchema["~standard"].jsonSchema.input({ target: "draft-2020-12" }) }),
    ...(config.annotations === undefined ? {} : { annotations: config.annotations }),
    requiredScopes: config.scopes ?? [],
    call: (args, call) =>
      Effect.gen(function*() {
        const ctx: SdkToolContext = {
          mcpReq: { method: "tools/call", inputResponses: call.inputResponses, requestState: () => call.state },
          http: {
            authInfo: {
              clientId: call.token.clientId,
              scopes: call.token.scopes,
              expiresAt: Math.floor(call.token.expiresAt / 1000),
              extra: { subject: call.token.subject, grantId: call.token.grantId }
            }
          }
        }
        if (schema === undefined) return fromSdkReturn(yield* Effect.promise(() => run(undefined, ctx)))
        const validated = yield* Effect.promise(() => Promise.resolve(schema["~standard"].validate(args)))
        if (validated.issues !== undefined) {
          return { _tag: "Complete", result: { content: [{ type: "text", text: `Input validation error: ${issuesText(validated.issues)}` }], isError: true } }
        }
        return fromSdkReturn(yield* Effect.promise(() => run(validated.value, ctx)))
      })
  }
}
