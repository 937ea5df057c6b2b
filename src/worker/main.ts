/**
 * This repository's Worker (`wrangler.toml`'s `main`): the server with the
 * example tools of `npm start` (`whoami`, `greet`), on the Durable Object
 * backend. A Worker of your own is the same three lines with your tools
 * (README, "The server as a Cloudflare Worker").
 */
import { StoreObject } from "../layers/durable/object/storeObject.ts"
import { greet } from "../http/mcp/tools/greet.ts"
import { whoami } from "../http/mcp/tools/whoami.ts"
import { DEFAULT_SCOPE_DESCRIPTIONS } from "../server/config.ts"
import * as McpWorker from "./McpWorker.ts"

export { StoreObject }

export default McpWorker.make({ tools: [whoami, greet], server: { scopeDescriptions: DEFAULT_SCOPE_DESCRIPTIONS } })
