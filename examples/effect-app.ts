/**
 * The server mounted in an @effect/platform application of your own: your
 * routes first, then everything else (discovery, OAuth endpoints, /mcp) goes
 * to the MCP server, which serves one custom tool written as an Effect.
 *
 *   PORT=3000 node --import tsx examples/effect-app.ts
 *
 * Development only: every authorization is approved as `demo-user`; give
 * `signIn: { apiKeys: [...] }` instead to sign users in on the consent page.
 */
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Schema } from "effect"
import { NodeCrypto } from "mcp-oauth-store/crypto/node"
import { MemoryStore } from "mcp-oauth-store/memory"
import { McpServer, McpTool } from "mcp-oauth-store/server"
import { createServer } from "node:http"

const port = Number(process.env["PORT"] ?? 3000)
const publicUrl = `http://127.0.0.1:${port}`

/** A tool as an Effect: the input decoded with Effect Schema, the caller's verified identity at hand. */
const add = McpTool.make({
  name: "add",
  description: "Adds two numbers.",
  input: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
  output: Schema.Struct({ sum: Schema.Number, by: Schema.String }),
  scopes: ["calc"],
  run: ({ a, b }, call) => Effect.succeed(McpTool.json({ sum: a + b, by: call.token.subject }))
})

/** Your application: its own routes, and the MCP server for everything else. */
const app = HttpRouter.empty.pipe(
  HttpRouter.get("/", HttpServerResponse.text("my application")),
  HttpRouter.all("*", McpServer.httpApp)
)

const McpLive = McpServer.layer({ publicUrl, tools: [add], signIn: { autoApprove: "demo-user" } }).pipe(
  Layer.provideMerge(MemoryStore.layer()),
  Layer.provideMerge(NodeCrypto.layerEphemeral)
)

// The services are built first (signing keys loaded), then the server listens.
const ServerLive = HttpServer.serve(app).pipe(
  HttpServer.withLogAddress,
  Layer.provide(NodeHttpServer.layer(createServer, { port, host: "127.0.0.1" })),
  Layer.provide(McpLive)
)

NodeRuntime.runMain(Layer.launch(ServerLive))
