/**
 * The part of oidc-provider 9's API the federation tests use (the package
 * ships no types and no @types package is pinned). Provider is a Koa app.
 */
declare module "oidc-provider" {
  import type { IncomingMessage, ServerResponse } from "node:http"

  /** The configuration object (see the package's docs/README.md); only what the tests set is typed loosely. */
  export type Configuration = Record<string, unknown>

  export class Provider {
    constructor(issuer: string, configuration?: Configuration)
    readonly issuer: string
    /** Koa's request listener. */
    callback(): (req: IncomingMessage, res: ServerResponse) => void
    on(event: string, listener: (...args: Array<unknown>) => void): this
  }

  export default Provider
}
