/**
 * Client authentication as presented on the wire (RFC 6749 §2.3.1): HTTP
 * Basic with form-encoded id and secret, a secret in the form, or a bare
 * `client_id` (public client). Using two methods at once is refused.
 */
import { Effect, Redacted } from "effect"
import { InvalidClient, InvalidRequest } from "../errors/OAuthError.ts"
import type { ClientCredentials } from "../oauth/clientAuth.ts"
import type { RenderContext } from "../errors/render.ts"
import type { FormParams, RequestHeaders } from "./body.ts"

const formDecode = (value: string): string | undefined => {
  try {
    return decodeURIComponent(value.replace(/\+/g, " "))
  } catch {
    return undefined
  }
}

/** The id and secret of an `Authorization: Basic` header, `undefined` when there is none. */
const basicCredentials = (header: string | undefined): Effect.Effect<ClientCredentials | undefined, InvalidClient> => {
  if (header === undefined || !/^basic /i.test(header)) return Effect.succeed(undefined)
  const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8")
  const colon = decoded.indexOf(":")
  const id = colon > 0 ? formDecode(decoded.slice(0, colon)) : undefined
  const secret = colon > 0 ? formDecode(decoded.slice(colon + 1)) : undefined
  return id === undefined || secret === undefined
    ? Effect.fail(new InvalidClient({ description: "malformed Basic credentials" }))
    : Effect.succeed({ clientId: id, clientSecret: Redacted.make(secret), method: "client_secret_basic" })
}

/** The client's credentials from the `Authorization` header and the form. */
export const clientCredentials = (
  request: RequestHeaders,
  form: FormParams
): Effect.Effect<ClientCredentials, InvalidClient | InvalidRequest> =>
  Effect.flatMap(basicCredentials(request.headers["authorization"]), (basic): Effect.Effect<ClientCredentials, InvalidClient | InvalidRequest> => {
    const formId = form["client_id"]
    const formSecret = form["client_secret"]
    if (basic !== undefined) {
      if (formSecret !== undefined) {
        return Effect.fail(new InvalidRequest({ description: "use one client authentication method, not two" }))
      }
      if (formId !== undefined && formId !== basic.clientId) {
        return Effect.fail(new InvalidRequest({ description: "client_id differs from the authenticated client" }))
      }
      return Effect.succeed(basic)
    }
    if (formId === undefined) return Effect.fail(new InvalidClient({ description: "client authentication is required" }))
    return Effect.succeed(
      formSecret === undefined
        ? { clientId: formId, method: "none" }
        : { clientId: formId, clientSecret: Redacted.make(formSecret), method: "client_secret_post" }
    )
  })

/** The render context of a client-authenticating endpoint: a Basic challenge when the client tried Basic. */
export const clientAuthContext = (request: RequestHeaders): RenderContext =>
  /^basic /i.test(request.headers["authorization"] ?? "") ? { challenge: { scheme: "Basic" } } : {}
