/**
 * The server as a web-standard `fetch` handler (what Workers, Bun, Deno and
 * Hono call), here inside a plain `node:http` server, with one tool written
 * the way MCP SDK users write them: a zod input schema and an async handler.
 *
 *   PORT=3001 node --import tsx examples/fetch-handler.ts
 *
 * Development only: every authorization is approved as `demo-user`.
 */
import { Layer } from "effect"
import { NodeCrypto } from "mcp-oauth-store/crypto/node"
import { MemoryStore } from "mcp-oauth-store/memory"
import { McpServer, McpTool } from "mcp-oauth-store/server"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import { Readable } from "node:stream"
import { z } from "zod"

const port = Number(process.env["PORT"] ?? 3001)
const publicUrl = `http://127.0.0.1:${port}`

/** A tool as `registerTool` takes it: a zod object, an async handler with the caller's `authInfo`. */
const echo = McpTool.fromSdk(
  "echo",
  { description: "Echoes the text back, signed by the caller.", inputSchema: z.object({ text: z.string().max(1000) }), scopes: ["echo"] },
  async ({ text }, ctx) => ({ content: [{ type: "text", text: `${ctx.http.authInfo.extra.subject} said: ${text}` }] })
)

const { dispose, handler } = McpServer.toWebHandler(
  { publicUrl, tools: [echo], signIn: { autoApprove: "demo-user" } },
  MemoryStore.layer().pipe(Layer.provideMerge(NodeCrypto.layerEphemeral))
)

/** node:http request -> web `Request`. */
const toRequest = (request: IncomingMessage): Request => {
  const headers = new Headers()
  for (const [name, value] of Object.entries(request.headers)) {
    for (const one of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, one)
  }
  const hasBody = request.method !== "GET" && request.method !== "HEAD"
  return new Request(new URL(request.url ?? "/", publicUrl), {
    method: request.method ?? "GET",
    headers,
    ...(hasBody ? { body: Readable.toWeb(request) as ReadableStream, duplex: "half" } : {})
  })
}

/** Web `Response` -> node:http response. */
const send = async (response: Response, out: ServerResponse): Promise<void> => {
  const headers: Record<string, string | Array<string>> = {}
  response.headers.forEach((value, name) => {
    if (name !== "set-cookie") headers[name] = value
  })
  const cookies = response.headers.getSetCookie()
  if (cookies.length > 0) headers["set-cookie"] = cookies
  out.writeHead(response.status, headers)
  if (response.body === null) return void out.end()
  const reader = response.body.getReader()
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) out.write(chunk.value)
  out.end()
}

const server = createServer((request, response) => {
  // A web `Request` carries no peer address: hand it over, for the per-address limits.
  handler(toRequest(request), { remoteAddress: request.socket.remoteAddress }).then((answer) => send(answer, response)).catch(() => {
    response.statusCode = 500
    response.end()
  })
})
server.listen(port, "127.0.0.1")

process.once("SIGTERM", () => server.close(() => void dispose()))
