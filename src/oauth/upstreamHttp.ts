/**
 * `UpstreamTokenClient` over HTTP (`@effect/platform`'s `HttpClient`): a
 * form-encoded `refresh_token` (RFC 6749 §6) or `authorization_code`
 * (RFC 6749 §4.1.3, RFC 7636 §4.5) request to each provider's token endpoint,
 * its answer parsed into a typed success or failure.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { Duration, Effect, Layer, Redacted, Schema } from "effect"
import {
  type UpstreamCodeGrant,
  UpstreamTokenClient,
  UpstreamTokenError,
  type UpstreamTokenResponse
} from "../services/UpstreamTokenClient.ts"
import { parseScope } from "./scopes.ts"
import { traced } from "../internal/traced.ts"

/** One upstream OAuth provider's token endpoint and our credentials there. */
export interface UpstreamProvider {
  /** The token endpoint, or how to find it (for example through the provider's discovery document). */
  readonly tokenEndpoint: string | Effect.Effect<string, UpstreamTokenError>
  readonly clientId: string
  readonly clientSecret?: Redacted.Redacted<string>
  /** Default: `client_secret_basic` when there is a secret, else `none` (client_id in the form). */
  readonly authMethod?: "client_secret_basic" | "client_secret_post" | "none"
  /** Default: 10 seconds. */
  readonly timeout?: Duration.DurationInput
}

const TokenResponseBody = Schema.Struct({
  access_token: Schema.String,
  token_type: Schema.optional(Schema.String),
  expires_in: Schema.optional(Schema.NonNegative),
  refresh_token: Schema.optional(Schema.String),
  refresh_token_expires_in: Schema.optional(Schema.NonNegative),
  refresh_expires_in: Schema.optional(Schema.NonNegative),
  scope: Schema.optional(Schema.String)
})
const ErrorResponseBody = Schema.Struct({ error: Schema.String, error_description: Schema.optional(Schema.String) })
const decodeToken = Schema.decodeUnknownOption(TokenResponseBody)
const decodeError = Schema.decodeUnknownOption(ErrorResponseBody)

/** Error codes that mean the refresh token is dead (GitHub says `bad_refresh_token`, with HTTP 200). */
const DEAD_GRANT = new Set(["invalid_grant", "bad_refresh_token"])

/** `application/x-www-form-urlencoded` encoding of one credential, as HTTP Basic client auth wants (RFC 6749 §2.3.1). */
const formEncode = (value: string): string => encodeURIComponent(value).replace(/%20/g, "+")

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** Interpret a token endpoint's answer. Only error codes and short descriptions ever reach the error. */
const interpretTokenResponse = (
  providerId: string,
  status: number,
  body: string
): Effect.Effect<UpstreamTokenResponse, UpstreamTokenError> => {
  const json = parseJson(body)
  const failure = decodeError(json)
  if (failure._tag === "Some") {
    const { error, error_description } = failure.value
    return Effect.fail(
      new UpstreamTokenError({
        providerId,
        reason: DEAD_GRANT.has(error) ? "InvalidGrant" : status >= 500 ? "Unavailable" : "Rejected",
        error: error.slice(0, 64),
        status,
        ...(error_description === undefined ? {} : { description: error_description.slice(0, 200) })
      })
    )
  }
  if (status >= 500 || status === 429) return Effect.fail(new UpstreamTokenError({ providerId, reason: "Unavailable", status }))
  const success = status === 200 ? decodeToken(json) : undefined
  if (success === undefined || success._tag === "None") {
    return Effect.fail(
      new UpstreamTokenError({ providerId, reason: "InvalidResponse", status, description: "not a token response" })
    )
  }
  const token = success.value
  const scopes = token.scope === undefined ? undefined : parseScope(token.scope)
  const refreshExpiresIn = token.refresh_token_expires_in ?? token.refresh_expires_in
  return Effect.succeed({
    accessToken: Redacted.make(token.access_token),
    ...(token.refresh_token === undefined ? {} : { refreshToken: Redacted.make(token.refresh_token) }),
    ...(token.token_type === undefined ? {} : { tokenType: token.token_type }),
    ...(token.expires_in === undefined ? {} : { expiresIn: token.expires_in }),
    ...(refreshExpiresIn === undefined ? {} : { refreshExpiresIn }),
    ...(scopes === undefined ? {} : { scopes })
  })
}

/** Build the client over `HttpClient` for the given providers, by id. */
export const make = (providers: Readonly<Record<string, UpstreamProvider>>) =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient

    /** POST `form` to the provider's token endpoint, authenticated as configured, and interpret the answer. */
    const tokenRequest = (providerId: string, form: Record<string, string>) =>
      Effect.gen(function*() {
        const provider = Object.hasOwn(providers, providerId) ? providers[providerId] : undefined
        if (provider === undefined) return yield* Effect.fail(new UpstreamTokenError({ providerId, reason: "UnknownProvider" }))
        const endpoint = typeof provider.tokenEndpoint === "string" ? provider.tokenEndpoint : yield* provider.tokenEndpoint
        const method = provider.authMethod ?? (provider.clientSecret === undefined ? "none" : "client_secret_basic")
        const secret = provider.clientSecret === undefined ? "" : Redacted.value(provider.clientSecret)
        const body: Record<string, string> = { ...form }
        if (method !== "client_secret_basic") body["client_id"] = provider.clientId
        if (method === "client_secret_post") body["client_secret"] = secret
        let request = HttpClientRequest.post(endpoint).pipe(
          HttpClientRequest.acceptJson,
          HttpClientRequest.bodyUrlParams(body)
        )
        if (method === "client_secret_basic") {
          const credentials = btoa(`${formEncode(provider.clientId)}:${formEncode(secret)}`)
          request = HttpClientRequest.setHeader(request, "authorization", `Basic ${credentials}`)
        }
        const { body: text, status } = yield* http.execute(request).pipe(
          Effect.flatMap((response) => Effect.map(response.text, (text) => ({ status: response.status, body: text }))),
          Effect.scoped,
          Effect.timeoutFail({
            duration: provider.timeout ?? "10 seconds",
            onTimeout: () => new UpstreamTokenError({ providerId, reason: "Unavailable", description: "token endpoint timed out" })
          }),
          // The request (and so the refresh token or code in its body) must not travel with the error: keep only its kind.
          Effect.catchTag("RequestError", "ResponseError", (error) =>
            Effect.fail(
              new UpstreamTokenError({
                providerId,
                reason: "Unavailable",
                description: `token endpoint unreachable (${error._tag} ${error.reason})`
              })
            ))
        )
        return yield* interpretTokenResponse(providerId, status, text)
      })

    const refresh = (providerId: string, refreshToken: Redacted.Redacted<string>) =>
      tokenRequest(providerId, { grant_type: "refresh_token", refresh_token: Redacted.value(refreshToken) }).pipe(
        traced("UpstreamTokenClient.refresh", { providerId })
      )

    const exchangeCode = (providerId: string, grant: UpstreamCodeGrant) =>
      tokenRequest(providerId, {
        grant_type: "authorization_code",
        code: Redacted.value(grant.code),
        redirect_uri: grant.redirectUri,
        code_verifier: Redacted.value(grant.codeVerifier)
      }).pipe(traced("UpstreamTokenClient.exchangeCode", { providerId }))

    const service: UpstreamTokenClient.Service = { refresh, exchangeCode }
    return service
  })

/** The HTTP `UpstreamTokenClient` as a layer; needs an `HttpClient` (for example `FetchHttpClient.layer`). */
export const layer = (
  providers: Readonly<Record<string, UpstreamProvider>>
): Layer.Layer<UpstreamTokenClient, never, HttpClient.HttpClient> => Layer.effect(UpstreamTokenClient, make(providers))
