import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { approve, authorize } from "../../src/oauth/authorize.ts"
import { authenticateClient } from "../../src/oauth/clientAuth.ts"
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
