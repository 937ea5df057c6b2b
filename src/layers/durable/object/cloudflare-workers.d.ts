/**
 * The types of the `cloudflare:workers` module (built into workerd) for this
 * project's type checking: `@cloudflare/workers-types` declares it only in
 * its global flavour, which the project does not load (it would clash with
 * Node's and the DOM's globals).
 */
declare module "cloudflare:workers" {
  import type { CloudflareWorkersModule } from "@cloudflare/workers-types"

  export const DurableObject: typeof CloudflareWorkersModule.DurableObject
  export type DurableObject<Env = unknown> = CloudflareWorkersModule.DurableObject<Env>
}
