/**
 * A `subscriptions/listen` stream served on the Node fast path (`toHandler`)
 * ends on the server when its client goes away: the request's fiber is
 * interrupted, and its event-bus subscription with it. (The fast path writes
 * most answers before it could listen for the client leaving; a stream is the
 * answer still running then.)
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, ManagedRuntime } from "effect"
import { createServer, type IncomingMessage, request as httpRequest } from "node:http"
import type { AddressInfo } from "node:net"
import { NodeCrypto } from "../../src/exports/crypto/node.ts"
import type * as McpServer from "../../src/http/McpServer.ts"
import { toHandler } from "../../src/http/node.ts"
import * as MemoryStore from "../../src/layers/memory/index.ts"
import { McpEventBus } from "../../src/services/McpEventBus.ts"
import { grantTokens, registerPublicClient } from "../support/oauthFlow.ts"

const ENVELOPE = {
  "io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientCapabilities": {}
}

describe("a listen stream on the Node fast path", () => {
  const server = createServer()
  const stores = ManagedRuntime.make(MemoryStore.layer({ sweepInterval: "1 day" }).pipe(Layer.provideMerge(NodeCrypto.layerEphemeral)))
  let url = ""
  let dispose = (): Promise<void> => Promise.resolve()

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const shared = Layer.succeedContext(await stores.runPromise(Effect.context<McpServer.McpServerRequirements>()))
    const mounted = toHandler({ publicUrl: url, signIn: { autoApprove: "alice" }, scopes: ["mcp:tools"] }, shared)
    server.on("request", mounted.handler)
    dispose = mounted.dispose
  }, 60_000)

  afterAll(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await dispose()
    await stores.dispose()
  })

  const subscriptions = () => stores.runPromise(Effect.flatMap(McpEventBus, (bus) => bus.subscriptions))

  it("ends its subscription on the server when the client goes away", { timeout: 60_000 }, async () => {
    const tokens = await grantTokens(url, await registerPublicClient(url))
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id: "listen:1",
      method: "subscriptions/listen",
      params: { notifications: { toolsListChanged: true }, _meta: ENVELOPE }
    })
    const target = new URL("/mcp", url)
    const request = httpRequest({
      host: target.hostname,
      port: target.port,
      path: target.pathname,
      method: "POST",
      headers: {
        authorization: `Bearer ${tokens.access_token}`,
        "content-type": "application/json",
        "content-length": String(Buffer.byteLength(body)),
        accept: "text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "subscriptions/listen"
      }
    })
    request.on("error", () => {}) // destroyed below on purpose
    const response = await new Promise<IncomingMessage>((resolve) => request.once("response", resolve).end(body))
    expect(response.headers["content-type"]).toContain("text/event-stream")
    await new Promise<void>((resolve) => {
      let seen = ""
      response.on("data", (chunk: Buffer) => {
        seen += chunk.toString("utf8")
        if (seen.includes("subscriptions/acknowledged")) resolve()
      })
    })
    expect(await subscriptions()).toBe(1)

    request.destroy()
    let open = 1
    for (let waited = 0; waited < 5_000 && open > 0; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      open = await subscriptions()
    }
    expect(open).toBe(0)
  })
})
