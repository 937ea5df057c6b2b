/**
 * The `greet` example tool: a multi-round tool (protocol revision 2026-07-28).
 * The first round asks the user for a name through the client (a form
 * elicitation) and leaves a sealed state; the second, with the user's answer
 * and that state, greets. In a 2025 session it answers with a tool error
 * saying why it cannot ask.
 */
import { Effect, Option, Schema } from "effect"
import * as McpTool from "../McpTool.ts"
import { TOOLS_SCOPE } from "./whoami.ts"

/** The form the user fills in. */
const NameForm = Schema.Struct({ name: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(100)) })

/** What the first round leaves for the second: which question was asked. */
const Asked = Schema.Struct({ asked: Schema.Literal("name") })

/** `greet`: needs `mcp:tools`; asks the user's name, then greets them. */
export const greet: McpTool.McpTool = McpTool.make({
  name: "greet",
  title: "Greet",
  description: "Greets the user by name. It asks the user for their name through the client (a multi-round tool).",
  scopes: [TOOLS_SCOPE],
  annotations: { readOnlyHint: true },
  run: (_input, call) =>
    Effect.gen(function*() {
      const asked = Schema.is(Asked)(call.state)
      const answer = asked ? yield* McpTool.accepted(call, "name", NameForm) : Option.none()
      return Option.match(answer, {
        onNone: () =>
          McpTool.inputRequired({ name: McpTool.elicit({ message: "What is your name?", schema: NameForm }) }, { asked: "name" }),
        onSome: ({ name }) => McpTool.text(`Hello, ${name}!`)
      })
    })
})
