/**
 * The front channel of the authorization-code flow: validate an authorization
 * request and save it as a pending transaction (`authorize`), then the
 * user's decision (`approve` issues the code, `deny` refuses), each taking the
 * transaction exactly once.
 */
import { Data, Duration, Effect, Option } from "effect"
import {
  InvalidClient,
  InvalidRequest,
  InvalidScope,
  type OAuthError,
  UnauthorizedClient
} from "../errors/OAuthError.ts"
import type { RegisteredClient } from "../schema/client.ts"
import type { Grant } from "../schema/token.ts"
import type { Transaction } from "../schema/transaction.ts"
import { ClientStore } from "../services/ClientStore.ts"
import { Crypto } from "../services/Crypto.ts"
import type { StoreError } from "../services/StoreError.ts"
import { TokenStore } from "../services/TokenStore.ts"
import { findClient } from "./clientMetadataDocument.ts"
import { OAuthConfig } from "./config.ts"
import { isCodeChallenge } from "./pkce.ts"
import { isSha256Base64Url } from "../internal/base64url.ts"
import { matchRedirectUri } from "./redirectUris.ts"
import { resolveResource } from "./resources.ts"
import { narrowScopes, parseScope } from "./scopes.ts"
import { traced } from "../internal/traced.ts"

/** An authorization request's parameters (RFC 6749 §4.1.1, RFC 7636, RFC 8707), as received. */
export interface AuthorizationRequest {
  readonly responseType?: string | undefined
  readonly clientId?: string | undefined
  readonly redirectUri?: string | undefined
  readonly scope?: string | undefined
  readonly state?: string | undefined
  readonly codeChallenge?: string | undefined
  readonly codeChallengeMethod?: string | undefined
  /** RFC 8707 `resource`: one value (several are refused with `invalid_target`). */
  readonly resource?: string | ReadonlyArray<string> | undefined
  /** RFC 9449 §10 `dpop_jkt`: bind the code to the DPoP key with this JWK SHA-256 thumbprint. */
  readonly dpopJkt?: string | undefined
  /** The signed-in user, when the server already knows who it is. */
  readonly subject?: string | undefined
  /** Upstream federation: the state and PKCE verifier of our request to the provider, kept with the transaction. */
  readonly upstream?: Transaction["upstream"]
}

/** A response to send to the client's redirect URI: its parameters go in the query (RFC 6749 §4.1.2). */
export interface AuthorizationRedirect {
  readonly redirectUri: string
  readonly params: Readonly<Record<string, string>>
}

/** The URL to redirect the user agent to. */
export const redirectLocation = (redirect: AuthorizationRedirect): string => {
  const url = new URL(redirect.redirectUri)
  for (const [name, value] of Object.entries(redirect.params)) url.searchParams.append(name, value)
  return url.toString()
}

/**
 * An authorization error to report to the client through its redirect URI
 * (RFC 6749 §4.1.2.1): raised only once the client and redirect URI are known
 * good. Errors raised before that (`InvalidClient`, `InvalidRequest` for a
 * bad redirect URI) must be shown to the user instead, never redirected.
 */
export class AuthorizationErrorRedirect extends Data.TaggedError("AuthorizationErrorRedirect")<{
  readonly error: OAuthError
  readonly redirect: AuthorizationRedirect
}> {}

/** A validated authorization request, waiting for the user's consent. */
export interface PendingAuthorization {
  readonly transaction: Transaction
  readonly client: RegisteredClient
}

const errorParams = (config: { readonly issuer: string }, error: OAuthError, state: string | undefined) => ({
  error: error.error,
  ...(error.description === undefined ? {} : { error_description: error.description }),
  ...(state === undefined ? {} : { state }),
  iss: config.issuer
})

/** The scopes of a request narrowed to what the client may have and the server supports. */
const resolveScopes = (
  scope: string | undefined,
  client: RegisteredClient,
  supported: ReadonlyArray<string> | undefined
): Effect.Effect<ReadonlyArray<string>, InvalidScope> => {
  const requested = parseScope(scope)
  const registered = client.metadata.scope === undefined ? undefined : parseScope(client.metadata.scope)
  if (requested === undefined) return Effect.fail(new InvalidScope({ description: "scope is malformed" }))
  const asked = requested.length === 0 ? registered ?? [] : requested
  const narrowed = narrowScopes(narrowScopes(asked, registered), supported)
  return asked.length > 0 && narrowed.length === 0
    ? Effect.fail(new InvalidScope({ description: "none of the requested scopes may be granted to this client" }))
    : Effect.succeed(narrowed)
}

/**
 * Validate an authorization request and save it as a pending transaction.
 *
 * The client (registered, or a Client ID Metadata Document: `findClient`) and
 * the redirect URI (a registered one, exactly, or a loopback one in any port,
 * RFC 8252 §7.3; may be left out only when exactly one is registered) are
 * checked first: their failures are plain `InvalidClient` / `InvalidRequest`,
 * for the user. Then, as `AuthorizationErrorRedirect`: `response_type=code`,
 * the client's grant types, PKCE (S256 only; `plain` or no challenge
 * refused), the `resource` (RFC 8707: compared in its canonical form,
 * recorded as the configured string, later the token's audience) and the
 * scopes (narrowed to what the client registered and the server supports).
 * `state` is carried. Every parameter is bounded (`authorizationRequestLimits`):
 * an overlong `client_id` or `redirect_uri` is for the user; an overlong
 * `state` goes to the client without its `state` (it is not sent back).
 */
export const authorize = (
  request: AuthorizationRequest
): Effect.Effect<
  PendingAuthorization,
  InvalidClient | InvalidRequest | AuthorizationErrorRedirect | StoreError,
  ClientStore | TokenStore | Crypto | OAuthConfig
> =>
  Effect.gen(function*() {
    const config = yield* OAuthConfig
    const bounds = config.authorizationRequestLimits
    const tooLong = (value: string | ReadonlyArray<string> | undefined, max: number) =>
      value !== undefined && (typeof value === "string" ? [value] : value).some((v) => v.length > max)
    if (request.clientId === undefined) return yield* Effect.fail(new InvalidRequest({ description: "client_id is required" }))
    for (const [name, value] of [["client_id", request.clientId], ["redirect_uri", request.redirectUri]] as const) {
      if (tooLong(value, bounds.maxParameterLength)) {
        return yield* Effect.fail(new InvalidRequest({ description: `${name} is longer than ${bounds.maxParameterLength} characters` }))
      }
    }
    const found = yield* findClient(request.clientId)
    if (Option.isNone(found)) return yield* Effect.fail(new InvalidClient({ description: "unknown client" }))
    const client = found.value
    const registered = client.metadata.redirect_uris
    const redirectUri = request.redirectUri ?? (registered.length === 1 ? registered[0] : undefined)
    if (redirectUri === undefined) {
      return yield* Effect.fail(new InvalidRequest({ description: "redirect_uri is required" }))
    }
    if (!matchRedirectUri(registered, redirectUri)) {
      return yield* Effect.fail(new InvalidRequest({ description: "redirect_uri does not match a registered redirect URI" }))
    }

    if (tooLong(request.state, bounds.maxStateLength)) {
      // Not echoed back: the point is not to carry it.
      const error = new InvalidRequest({ description: `state is longer than ${bounds.maxStateLength} characters` })
      return yield* Effect.fail(
        new AuthorizationErrorRedirect({ error, redirect: { redirectUri, params: errorParams(config, error, undefined) } })
      )
    }
    const state = request.state
    const toClient = (error: OAuthError) =>
      new AuthorizationErrorRedirect({ error, redirect: { redirectUri, params: errorParams(config, error, state) } })

    const validated = yield* Effect.gen(function*() {
      const overlong = (
        [
          ["response_type", request.responseType],
          ["scope", request.scope],
          ["code_challenge", request.codeChallenge],
          ["code_challenge_method", request.codeChallengeMethod],
          ["resource", request.resource]
        ] as const
      ).find(([, value]) => tooLong(value, bounds.maxParameterLength))
      if (overlong !== undefined) {
        return yield* Effect.fail(new InvalidRequest({ description: `${overlong[0]} is longer than ${bounds.maxParameterLength} characters` }))
      }
      if (request.responseType !== "code") {
        return yield* Effect.fail(new InvalidRequest({ description: "response_type must be code" }))
      }
      if (!client.metadata.grant_types.includes("authorization_code")) {
        return yield* Effect.fail(new UnauthorizedClient({ description: "client may not use the authorization code grant" }))
      }
      if (request.codeChallenge === undefined) {
        return yield* Effect.fail(new InvalidRequest({ description: "code_challenge is required (PKCE)" }))
      }
      if (request.codeChallengeMethod !== "S256") {
        return yield* Effect.fail(new InvalidRequest({ description: "code_challenge_method must be S256" }))
      }
      if (!isCodeChallenge(request.codeChallenge)) {
        return yield* Effect.fail(new InvalidRequest({ description: "code_challenge is not an S256 challenge" }))
      }
      if (request.dpopJkt !== undefined && !isSha256Base64Url(request.dpopJkt)) {
        return yield* Effect.fail(new InvalidRequest({ description: "dpop_jkt is not a JWK SHA-256 thumbprint" }))
      }
      const resource = (yield* resolveResource(request.resource, config.resources)) ?? config.defaultAudience
      const scopes = yield* resolveScopes(request.scope, client, config.scopesSupported)
      return { codeChallenge: request.codeChallenge, resource, scopes }
    }).pipe(Effect.mapError(toClient))

    const id = yield* (yield* Crypto).randomToken(24)
    const transaction = yield* (yield* TokenStore).saveTransaction({
      id,
      clientId: client.clientId,
      redirectUri,
      codeChallenge: validated.codeChallenge,
      codeChallengeMethod: "S256",
      scopes: validated.scopes,
      resource: validated.resource,
      ...(state === undefined ? {} : { state }),
      ...(request.dpopJkt === undefined ? {} : { dpopJkt: request.dpopJkt }),
      ...(request.subject === undefined ? {} : { subject: request.subject }),
      ...(request.upstream === undefined ? {} : { upstream: request.upstream }),
      ttl: Duration.millis(config.transactionTtl)
    })
    return { transaction, client }
  }).pipe(traced("OAuth.authorize"))

/**
 * A pending authorization, for the consent page: `None` when unknown or
 * expired. Does not consume it. A metadata-document client whose cached copy
 * expired meanwhile is fetched again (`InvalidClient` if that fails).
 */
export const pendingAuthorization = (
  transactionId: string
): Effect.Effect<Option.Option<PendingAuthorization>, InvalidClient | StoreError, ClientStore | TokenStore | OAuthConfig> =>
  Effect.gen(function*() {
    const transaction = yield* (yield* TokenStore).getTransaction(transactionId)
    if (Option.isNone(transaction)) return Option.none()
    const client = yield* findClient(transaction.value.clientId)
    return Option.map(client, (c) => ({ transaction: transaction.value, client: c }))
  })

/** The user's consent to a pending authorization. */
export interface ConsentDecision {
  readonly transactionId: string
  /** The user who consented; required unless the transaction already names one (which must then agree). */
  readonly subject?: string | undefined
  /** The scopes the user agreed to (seed 002: a subset may be granted); default: all that were requested. */
  readonly grantedScopes?: ReadonlyArray<string> | undefined
}

/** The outcome of an approval: the grant, and the redirect carrying the code, `state` and `iss`. */
export interface AuthorizationApproved {
  readonly grant: Grant
  readonly redirect: AuthorizationRedirect
}

const unknownTransaction = () => new InvalidRequest({ description: "authorization request is unknown, expired or already decided" })

/**
 * Approve a pending authorization: take the transaction (atomically, once),
 * create the grant (scopes narrowed to what the user consented to), and issue
 * the single-use authorization code for it.
 */
export const approve = (
  decision: ConsentDecision
): Effect.Effect<AuthorizationApproved, InvalidRequest | StoreError, TokenStore | Crypto | OAuthConfig> =>
  Effect.gen(function*() {
    const config = yield* OAuthConfig
    const store = yield* TokenStore
    const crypto = yield* Crypto
    const taken = yield* store.takeTransaction(decision.transactionId)
    if (Option.isNone(taken)) return yield* Effect.fail(unknownTransaction())
    const transaction = taken.value
    if (decision.subject !== undefined && transaction.subject !== undefined && decision.subject !== transaction.subject) {
      return yield* Effect.fail(new InvalidRequest({ description: "consent is not from the user who signed in" }))
    }
    const subject = decision.subject ?? transaction.subject
    if (subject === undefined) return yield* Effect.fail(new InvalidRequest({ description: "no signed-in user" }))
    const scopes = decision.grantedScopes === undefined
      ? transaction.scopes
      : narrowScopes(transaction.scopes, decision.grantedScopes)

    const grant = yield* store.saveGrant({
      id: yield* crypto.randomToken(16),
      clientId: transaction.clientId,
      subject,
      scopes,
      ...(transaction.resource === undefined ? {} : { resource: transaction.resource }),
      ttl: Duration.millis(config.grantTtl)
    })
    const code = yield* crypto.randomToken(32)
    yield* store.saveCode(code, {
      grantId: grant.id,
      clientId: transaction.clientId,
      subject,
      redirectUri: transaction.redirectUri,
      codeChallenge: transaction.codeChallenge,
      codeChallengeMethod: transaction.codeChallengeMethod,
      scopes,
      ...(transaction.resource === undefined ? {} : { resource: transaction.resource }),
      ...(transaction.dpopJkt === undefined ? {} : { dpopJkt: transaction.dpopJkt }),
      authorizationId: transaction.id,
      ttl: Duration.millis(config.codeTtl)
    })
    const params = { code, ...(transaction.state === undefined ? {} : { state: transaction.state }), iss: config.issuer }
    return { grant, redirect: { redirectUri: transaction.redirectUri, params } }
  }).pipe(traced("OAuth.approve"))

/**
 * The user refused: take the transaction and send `access_denied` (with
 * `state`) to the client. `error` sends another error instead (an upstream
 * provider that failed, in federation).
 */
export const deny = (
  transactionId: string,
  error?: OAuthError
): Effect.Effect<AuthorizationRedirect, InvalidRequest | StoreError, TokenStore | OAuthConfig> =>
  Effect.gen(function*() {
    const config = yield* OAuthConfig
    const taken = yield* (yield* TokenStore).takeTransaction(transactionId)
    if (Option.isNone(taken)) return yield* Effect.fail(unknownTransaction())
    const params = {
      error: error?.error ?? "access_denied",
      error_description: error === undefined ? "the user denied the request" : error.description ?? error.error,
      ...(taken.value.state === undefined ? {} : { state: taken.value.state }),
      iss: config.issuer
    }
    return { redirectUri: taken.value.redirectUri, params }
  })
