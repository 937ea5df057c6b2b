import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { approve, authorize } from "../../src/oauth/authorize.ts"
import { authenticateClient } from "../../src/oauth/clientAuth.ts"
import { validateClientMetadataDocument } from "../../src/oauth/clientMetadataDocument.ts"
import { DEFAULT_CLIENT_METADATA_LIMITS } from "../../src/oauth/config.ts"
import { registerClient, registrationResponse } from "../../src/oauth/registration.ts"
import { exchangeCode } from "../../src/oauth/tokenEndpoint.ts"
import { ClientStore } from "../../src/services/ClientStore.ts"
import { RawStorage } from "../../src/services/RawStorage.ts"
import { authorizationRequest, pkce, publicClientMetadata, REDIRECT, using } from "./fixtures.ts"

const register = (metadata: Record<string, unknown>) => registerClient({ ...publicClientMetadata, ...metadata })

describe("client registration (RFC 7591)", () => {
  it.effect("redirect URIs: https, or http on a loopback host; anything else is invalid_redirect_uri", () =>
    using()(Effect.gen(function*() {
      for (const uri of ["https://app.example/cb", "http://127.0.0.1:3000/cb", "http://localhost/cb", "http://[::1]:9/cb"]) {
        yield* register({ redirect_uris: [uri] })
      }
      for (
        const uri of [
          "http://app.example/cb",
          // A private-use scheme only for a public client (below); this one is confidential.
          "com.example.app:/callback",
          "cursor://anysphere.cursor-retrieval/oauth/callback",
          "javascript:alert(1)",
          "/relative",
          "https://app.example/cb#fragment",
          "https://user:pw@app.example/cb"
        ]
      ) {
        const error = yield* Effect.flip(
          register({ redirect_uris: ["https://ok.example/cb", uri], token_endpoint_auth_method: "client_secret_post" })
        )
        expect(error._tag).toBe("InvalidRedirectUri")
      }
      expect((yield* Effect.flip(register({ redirect_uris: [] })))._tag).toBe("InvalidRedirectUri")
      expect((yield* Effect.flip(registerClient({ client_name: "no redirects" })))._tag).toBe("InvalidRedirectUri")
    })))

  it.effect("a public client (a native app, RFC 8252 §7.1) may register private-use schemes; dangerous schemes never", () =>
    using()(Effect.gen(function*() {
      const publicClient = (uri: string) => registerClient({ redirect_uris: [uri], token_endpoint_auth_method: "none" })
      for (
        const uri of [
          "com.example.app:/oauth2redirect/example-provider",
          "cursor://anysphere.cursor-retrieval/oauth/user-callback",
          "vscode://vscode.github-authentication/did-authenticate",
          "http://127.0.0.1/callback"
        ]
      ) {
        const { client } = yield* publicClient(uri)
        expect(client.metadata.redirect_uris).toEqual([uri])
      }
      for (
        const uri of [
          "javascript:alert(1)",
          "JavaScript:alert(1)",
          "data:text/html,<script>alert(1)</script>",
          "file:///etc/passwd",
          "blob:https://app.example/0b7c",
          "vbscript:msgbox",
          "about:blank",
          "http://app.example/cb",
          "com.example.app:/cb#frag"
        ]
      ) {
        const error = yield* Effect.flip(publicClient(uri))
        expect(error._tag).toBe("InvalidRedirectUri")
      }
    })))

  it.effect("metadata: auth method, grant and response types, scopes, URLs and member types", () =>
    using()(Effect.gen(function*() {
      const bad: ReadonlyArray<Record<string, unknown>> = [
        { token_endpoint_auth_method: "private_key_jwt" },
        { grant_types: ["authorization_code", "password"] },
        { grant_types: ["refresh_token"] },
        { response_types: ["token"] },
        { scope: "read superuser" },
        { client_uri: "ftp://example.com" },
        { redirect_uris: "https://app.example/cb" },
        { client_name: 42 }
      ]
      for (const metadata of bad) {
        const error = yield* Effect.flip(register(metadata))
        expect(error._tag).toBe("InvalidClientMetadata")
      }
      expect((yield* Effect.flip(registerClient("not an object")))._tag).toBe("InvalidClientMetadata")
    })))

  it.effect("defaults: client_secret_basic, authorization_code with refresh_token (most MCP clients omit grant_types), code", () =>
    using()(Effect.gen(function*() {
      const { client, clientSecret } = yield* registerClient({ redirect_uris: [REDIRECT] })
      expect(client.metadata).toMatchObject({
        token_endpoint_auth_method: "client_secret_basic",
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"]
      })
      expect(Option.isSome(clientSecret)).toBe(true)
      // Listed grant types are honored as they are.
      const codeOnly = yield* registerClient({ redirect_uris: [REDIRECT], grant_types: ["authorization_code"] })
      expect(codeOnly.client.metadata.grant_types).toEqual(["authorization_code"])
    })))

  it.effect("a confidential client's secret is returned once and stored only as a hash", () =>
    using()(Effect.gen(function*() {
      const registration = yield* register({ token_endpoint_auth_method: "client_secret_post" })
      const secret = Redacted.value(Option.getOrThrow(registration.clientSecret))
      const body = registrationResponse(registration)
      expect(body).toMatchObject({
        client_id: registration.client.clientId,
        client_secret: secret,
        client_secret_expires_at: 0,
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: "client_secret_post"
      })
      const raw = (yield* (yield* RawStorage).dump).join("\n")
      expect(raw).toContain(registration.client.clientId)
      expect(raw).not.toContain(secret)
      const stored = Option.getOrThrow(yield* (yield* ClientStore).get(registration.client.clientId))
      expect(stored.clientSecretHash).toBeDefined()
    })))

  it.effect("a public client gets no secret", () =>
    using()(Effect.gen(function*() {
      const registration = yield* register({ token_endpoint_auth_method: "none" })
      expect(Option.isNone(registration.clientSecret)).toBe(true)
      expect(registrationResponse(registration)["client_secret"]).toBeUndefined()
    })))
})

describe("client authentication", () => {
  it.effect("a confidential client authenticates with its registered method and secret only", () =>
    using()(Effect.gen(function*() {
      const registration = yield* register({ token_endpoint_auth_method: "client_secret_basic" })
      const clientId = registration.client.clientId
      const secret = Option.getOrThrow(registration.clientSecret)
      yield* authenticateClient({ clientId, clientSecret: secret, method: "client_secret_basic" })
      const refused = [
        { clientId, clientSecret: secret, method: "client_secret_post" as const },
        { clientId, clientSecret: Redacted.make("wrong"), method: "client_secret_basic" as const },
        { clientId, method: "client_secret_basic" as const },
        { clientId, method: "none" as const },
        { clientId: "nobody", clientSecret: secret, method: "client_secret_basic" as const }
      ]
      for (const credentials of refused) {
        expect((yield* Effect.flip(authenticateClient(credentials)))._tag).toBe("InvalidClient")
      }
    })))

  it.effect("a public client must not send a secret", () =>
    using()(Effect.gen(function*() {
      const { client } = yield* register({ token_endpoint_auth_method: "none" })
      yield* authenticateClient({ clientId: client.clientId, method: "none" })
      const error = yield* Effect.flip(
        authenticateClient({ clientId: client.clientId, clientSecret: Redacted.make("x"), method: "client_secret_post" })
      )
      expect(error._tag).toBe("InvalidClient")
    })))

  it.effect("a confidential client exchanges its code only when it authenticates", () =>
    using()(Effect.gen(function*() {
      const registration = yield* register({ token_endpoint_auth_method: "client_secret_basic" })
      const clientId = registration.client.clientId
      const pending = yield* authorize(authorizationRequest(clientId))
      const approved = yield* approve({ transactionId: pending.transaction.id, subject: "alice" })
      const code = approved.redirect.params["code"] as string
      const request = { code, redirectUri: REDIRECT, codeVerifier: pkce().verifier }
      const refused = yield* Effect.flip(exchangeCode({ ...request, client: { clientId, method: "none" } }))
      expect(refused._tag).toBe("InvalidClient")
      const issued = yield* exchangeCode({
        ...request,
        client: { clientId, clientSecret: Option.getOrThrow(registration.clientSecret), method: "client_secret_basic" }
      })
      expect(issued.scopes).toEqual(["read", "write"])
    })))
})

describe("client metadata bounds", () => {
  it.effect("every member is bounded (DEFAULT_CLIENT_METADATA_LIMITS): over a bound is invalid_client_metadata naming the member, and nothing is stored", () =>
    using()(Effect.gen(function*() {
      const before = (yield* (yield* RawStorage).dump).length
      const uri = (length: number) => `https://app.example/${"p".repeat(length - "https://app.example/".length)}`
      const over: ReadonlyArray<readonly [Record<string, unknown>, string]> = [
        [{ client_name: "n".repeat(257) }, "client_name is longer than 256 characters"],
        [{ software_id: "s".repeat(257) }, "software_id is longer than 256"],
        [{ software_version: "v".repeat(257) }, "software_version is longer than 256"],
        [{ redirect_uris: Array.from({ length: 11 }, (_, i) => `https://app.example/cb${i}`) }, "redirect_uris has more than 10 entries"],
        [{ redirect_uris: [uri(2049)] }, "a redirect URI is longer than 2048 characters"],
        [{ client_uri: uri(2049) }, "client_uri is longer than 2048"],
        [{ logo_uri: uri(2049) }, "logo_uri is longer than 2048"],
        [{ tos_uri: uri(2049) }, "tos_uri is longer than 2048"],
        [{ policy_uri: uri(2049) }, "policy_uri is longer than 2048"],
        [{ jwks_uri: uri(2049) }, "jwks_uri is longer than 2048"],
        [{ contacts: Array.from({ length: 11 }, (_, i) => `c${i}@app.example`) }, "contacts has more than 10 entries"],
        [{ contacts: [`${"c".repeat(250)}@app.example`] }, "a contact is longer than 256"],
        [{ scope: "read ".repeat(205) }, "scope is longer than 1024"],
        [{ grant_types: Array.from({ length: 11 }, () => "authorization_code") }, "grant_types has more than 10 entries"],
        [{ client_name: "x".repeat(1024 * 1024) }, "client_name is longer than 256"]
      ]
      for (const [metadata, description] of over) {
        const error = yield* Effect.flip(register(metadata))
        expect(error._tag).toBe("InvalidClientMetadata")
        expect(error.description).toContain(description)
      }
      expect((yield* (yield* RawStorage).dump).length).toBe(before)
      // At the bounds: accepted.
      yield* register({
        client_name: "n".repeat(256),
        redirect_uris: [uri(2048), ...Array.from({ length: 9 }, (_, i) => `https://app.example/cb${i}`)],
        contacts: Array.from({ length: 10 }, (_, i) => `c${i}@app.example`),
        client_uri: uri(2048)
      })
    })))

  it.effect("the bounds are the engine's settings (clientMetadataLimits), and apply to Client ID Metadata Documents too", () =>
    using({ oauth: { clientMetadataLimits: { maxTextLength: 8, maxRedirectUris: 1 } } })(Effect.gen(function*() {
      expect((yield* Effect.flip(register({ client_name: "nine char" }))).description).toContain("client_name is longer than 8 characters")
      expect((yield* Effect.flip(register({ redirect_uris: [REDIRECT, `${REDIRECT}2`] }))).description).toContain("more than 1 entries")
      yield* register({ client_name: "eight ch" })
      const document = { client_id: "https://app.example/client.json", redirect_uris: [REDIRECT], client_name: "a long name" }
      const refused = yield* Effect.flip(validateClientMetadataDocument(document.client_id, document, undefined, { ...DEFAULT_CLIENT_METADATA_LIMITS, maxTextLength: 8 }))
      expect(refused.description).toContain("client_name is longer than 8 characters")
    })))
})
