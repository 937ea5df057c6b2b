/**
 * The authorization server's back-channel endpoints: `/register` (RFC 7591),
 * `/token` (RFC 6749 §3.2), `/revoke` (RFC 7009) and `/introspect`
 * (RFC 7662). Each reads its body, calls the engine, and answers JSON with
 * `Cache-Control: no-store`; every failure is an RFC 6749 error response.
 */
import { HttpServerRequest } from "@effect/platform"
import { Effect, Option } from "effect"
import { InvalidClientMetadata, InvalidRequest } from "../errors/OAuthError.ts"
import { authenticateClient } from "../oauth/clientAuth.ts"
import { registerClient, registrationResponse } from "../oauth/registration.ts"
import { introspect, revoke } from "../oauth/revocation.ts"
import { token, tokenResponse } from "../oauth/tokenEndpoint.ts"
import { BodyTooLarge, type FormParams, formOf, readForm, readJson, type TextRequest } from "./body.ts"
import { clientAuthContext, clientCredentials } from "./clientCredentials.ts"
import { clientKey, consume, HttpLimits, logRefusal, refused, tooManyRequestsJson } from "./limits.ts"
import { dpopProofInput, type ResourceRequest, withDpopNonce } from "./dpop.ts"
import { noteRequest, RequestLog } from "./requestLog.ts"
import { jsonResponse, orErrorResponse } from "./respond.ts"

/**
 * The registration document, within the smaller of the document limit
 * (over it: `invalid_client_metadata`) and the body limit (over it: 413).
 */
const readRegistration = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.flatMap(HttpLimits, (limits) => {
    const documentLimited = limits.maxRegistrationBytes < limits.maxBodyBytes
    const limit = Math.min(limits.maxRegistrationBytes, limits.maxBodyBytes)
    return HttpServerRequest.withMaxBodySize(readJson(request), Option.some(limit)).pipe(
      Effect.catchIf(
        (error): error is BodyTooLarge => error instanceof BodyTooLarge && documentLimited,
        () => Effect.fail(new InvalidClientMetadata({ description: `the client metadata document is larger than ${limit} bytes` }))
      )
    )
  })

/**
 * `POST /register`: dynamic client registration; 201 with the client (and
 * its secret, once). Paced per client address (429 with `Retry-After`),
 * before the body is read.
 */
export const registerHandler = (request: HttpServerRequest.HttpServerRequest) =>
  orErrorResponse(
    Effect.gen(function*() {
      const limits = yield* HttpLimits
      const address = yield* clientKey(request)
      const paced = yield* consume(limits.register, address)
      if (refused(paced)) {
        yield* logRefusal("register", address, paced)
        return tooManyRequestsJson(paced, "too many registrations from this address")
      }
      const metadata = yield* readRegistration(request)
      const registration = yield* registerClient(metadata)
      yield* Effect.logInfo("client registered").pipe(
        Effect.annotateLogs({
          client_id: registration.client.clientId,
          auth_method: registration.client.metadata.token_endpoint_auth_method
        })
      )
      return jsonResponse(registrationResponse(registration), { status: 201, noStore: true })
    })
  )

/** A request to `/token` as the handler reads it: method and headers (client authentication, DPoP), and its body as text. */
export interface TokenHttpRequest extends ResourceRequest, TextRequest {}

/**
 * `POST /token`: the authorization_code and refresh_token grants. A request
 * with a `DPoP` header gets DPoP-bound tokens (`token_type: DPoP`, RFC 9449
 * §5) or `invalid_dpop_proof`; every answer to it carries the current
 * `DPoP-Nonce` when the server requires nonces. Served by the platform's
 * router and by the Node fast path alike (each reads the body its own way,
 * within the same limit). Issued tokens are noted in the log (grant type,
 * client, grant, token type; never a token).
 */
export const tokenHandler = (request: TokenHttpRequest) => {
  const answer = orErrorResponse(Effect.flatMap(formOf(request), (form) => issueTokens(request, form)), clientAuthContext(request))
  return request.headers["dpop"] === undefined ? answer : Effect.flatMap(answer, (response) => withDpopNonce(response, "token"))
}

/** The client, its DPoP proof and the grant of a `/token` form: the token response, noted in the log. */
const issueTokens = (request: TokenHttpRequest, form: FormParams) =>
  Effect.flatMap(clientCredentials(request, form), (client) =>
    Effect.flatMap(dpopProofInput(request, "/token"), (dpop) =>
      Effect.flatMap(
        token({
          grantType: form["grant_type"],
          client,
          code: form["code"],
          redirectUri: form["redirect_uri"],
          codeVerifier: form["code_verifier"],
          refreshToken: form["refresh_token"],
          scope: form["scope"],
          resource: form["resource"],
          dpop
        }),
        (issued) =>
          Effect.flatMap(RequestLog, (log) =>
            Effect.as(
              noteRequest(log, "tokens issued", {
                grant_type: form["grant_type"] ?? "",
                client_id: client.clientId,
                grant_id: issued.grantId,
                token_type: issued.tokenType
              }),
              jsonResponse(tokenResponse(issued), { noStore: true })
            ))
      )))

/** `POST /revoke`: 200 whether or not the token was known (RFC 7009 §2.2). */
export const revokeHandler = (request: HttpServerRequest.HttpServerRequest) =>
  orErrorResponse(
    Effect.gen(function*() {
      const form = yield* readForm(request)
      const client = yield* clientCredentials(request, form)
      yield* revoke({ client, token: form["token"], tokenTypeHint: form["token_type_hint"] })
      return jsonResponse({}, { noStore: true })
    }),
    clientAuthContext(request)
  )

/**
 * `POST /introspect`: the caller authenticates as a registered client and
 * learns only about its own tokens (others' are reported inactive).
 */
export const introspectHandler = (request: HttpServerRequest.HttpServerRequest) =>
  orErrorResponse(
    Effect.gen(function*() {
      const form = yield* readForm(request)
      const client = yield* authenticateClient(yield* clientCredentials(request, form))
      if (form["token"] === undefined) return yield* Effect.fail(new InvalidRequest({ description: "token is required" }))
      const answer = yield* introspect({ token: form["token"], tokenTypeHint: form["token_type_hint"], clientId: client.clientId })
      return jsonResponse(answer, { noStore: true })
    }),
    clientAuthContext(request)
  )
