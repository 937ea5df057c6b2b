import { HttpApiSchema } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import {
  AccessDenied,
  InsufficientScope,
  InvalidClient,
  InvalidClientMetadata,
  InvalidDpopProof,
  InvalidGrant,
  InvalidRedirectUri,
  InvalidRequest,
  InvalidScope,
  InvalidTarget,
  InvalidToken,
  isOAuthError,
  OAuthError,
  OAuthErrorClasses,
  OAuthErrorCodes,
  OAuthErrorTags,
  ServerError,
  TemporarilyUnavailable,
  UnauthorizedClient,
  UnsupportedGrantType,
  UseDpopNonce
} from "../src/errors/OAuthError.ts"
import { logDetail, renderOAuthError, toOAuthError } from "../src/errors/render.ts"
import { StoreError } from "../src/services/StoreError.ts"

const RFC6749_4_1_2_1 = "https://datatracker.ietf.org/doc/html/rfc6749#section-4.1.2.1"
const RFC6749_5_2 = "https://datatracker.ietf.org/doc/html/rfc6749#section-5.2"
const RFC6750_3_1 = "https://datatracker.ietf.org/doc/html/rfc6750#section-3.1"
const RFC7591_3_2_2 = "https://datatracker.ietf.org/doc/html/rfc7591#section-3.2.2"
const RFC8707_2 = "https://datatracker.ietf.org/doc/html/rfc8707#section-2"
const RFC9449_5 = "https://datatracker.ietf.org/doc/html/rfc9449#section-5"
const RFC9449_8 = "https://datatracker.ietf.org/doc/html/rfc9449#section-8"

const SERVER_ERROR_TEXT = "The server encountered an unexpected condition."

interface Row {
  readonly tag: string
  readonly cls: (typeof OAuthErrorClasses)[number]
  readonly make: (description?: string) => OAuthError
  readonly error: string
  readonly status: number
  /** The status at a protected resource, where it differs (the DPoP errors: 401). */
  readonly resourceStatus?: number
  readonly uri: string
}

const d = (description?: string): { description?: string } => description === undefined ? {} : { description }

/** The expected facts, written out independently of the implementation's table. */
const rows: ReadonlyArray<Row> = [
  { tag: "InvalidRequest", cls: InvalidRequest, make: (x) => new InvalidRequest(d(x)), error: "invalid_request", status: 400, uri: RFC6749_5_2 },
  { tag: "InvalidClient", cls: InvalidClient, make: (x) => new InvalidClient(d(x)), error: "invalid_client", status: 401, uri: RFC6749_5_2 },
  { tag: "InvalidGrant", cls: InvalidGrant, make: (x) => new InvalidGrant(d(x)), error: "invalid_grant", status: 400, uri: RFC6749_5_2 },
  { tag: "UnauthorizedClient", cls: UnauthorizedClient, make: (x) => new UnauthorizedClient(d(x)), error: "unauthorized_client", status: 400, uri: RFC6749_5_2 },
  { tag: "UnsupportedGrantType", cls: UnsupportedGrantType, make: (x) => new UnsupportedGrantType(d(x)), error: "unsupported_grant_type", status: 400, uri: RFC6749_5_2 },
  { tag: "InvalidScope", cls: InvalidScope, make: (x) => new InvalidScope(d(x)), error: "invalid_scope", status: 400, uri: RFC6749_5_2 },
  { tag: "InvalidToken", cls: InvalidToken, make: (x) => new InvalidToken(d(x)), error: "invalid_token", status: 401, uri: RFC6750_3_1 },
  { tag: "InsufficientScope", cls: InsufficientScope, make: (x) => new InsufficientScope({ ...d(x), scope: ["mcp:read", "mcp:write"] }), error: "insufficient_scope", status: 403, uri: RFC6750_3_1 },
  { tag: "AccessDenied", cls: AccessDenied, make: (x) => new AccessDenied(d(x)), error: "access_denied", status: 403, uri: RFC6749_4_1_2_1 },
  { tag: "InvalidTarget", cls: InvalidTarget, make: (x) => new InvalidTarget(d(x)), error: "invalid_target", status: 400, uri: RFC8707_2 },
  { tag: "InvalidRedirectUri", cls: InvalidRedirectUri, make: (x) => new InvalidRedirectUri(d(x)), error: "invalid_redirect_uri", status: 400, uri: RFC7591_3_2_2 },
  { tag: "InvalidClientMetadata", cls: InvalidClientMetadata, make: (x) => new InvalidClientMetadata(d(x)), error: "invalid_client_metadata", status: 400, uri: RFC7591_3_2_2 },
  { tag: "ServerError", cls: ServerError, make: (x) => new ServerError(d(x)), error: "server_error", status: 500, uri: RFC6749_4_1_2_1 },
  { tag: "TemporarilyUnavailable", cls: TemporarilyUnavailable, make: (x) => new TemporarilyUnavailable({ ...d(x), retryAfter: 7 }), error: "temporarily_unavailable", status: 503, uri: RFC6749_4_1_2_1 },
  { tag: "InvalidDpopProof", cls: InvalidDpopProof, make: (x) => new InvalidDpopProof(d(x)), error: "invalid_dpop_proof", status: 400, resourceStatus: 401, uri: RFC9449_5 },
  { tag: "UseDpopNonce", cls: UseDpopNonce, make: (x) => new UseDpopNonce(d(x)), error: "use_dpop_nonce", status: 400, resourceStatus: 401, uri: RFC9449_8 }
]

const bearer = (tokenPresented: boolean, extra: { realm?: string; resourceMetadata?: string; scope?: ReadonlyArray<string> } = {}) => ({
  challenge: { scheme: "Bearer" as const, tokenPresented, ...extra }
})

/** Parse `Scheme k="v", k2="v2"` per RFC 9110 quoted-string rules. */
const parseChallenge = (header: string): { scheme: string; params: Record<string, string> } => {
  const match = /^(\S+)(?: (.*))?$/.exec(header)
  if (match === null || match[1] === undefined) throw new Error(`not a challenge: ${header}`)
  const params: Record<string, string> = {}
  const rest = match[2] ?? ""
  const re = /\s*([a-z_]+)="((?:[^"\\]|\\.)*)"\s*(,|$)/gy
  let consumed = 0
  for (let m = re.exec(rest); m !== null && m[0] !== ""; m = re.exec(rest)) {
    const key = m[1] ?? ""
    params[key] = (m[2] ?? "").replace(/\\(.)/g, "$1")
    consumed = re.lastIndex
  }
  if (consumed !== rest.length) throw new Error(`unparsed challenge tail: ${rest.slice(consumed)}`)
  return { scheme: match[1], params }
}

describe("OAuth errors", () => {
  it("declares exactly the 16 tags, in one table and one union", () => {
    expect([...OAuthErrorTags]).toStrictEqual(rows.map((r) => r.tag))
    expect(Object.keys(OAuthErrorCodes).sort()).toStrictEqual(rows.map((r) => r.tag).sort())
    expect(OAuthErrorClasses.map((c) => c._tag)).toStrictEqual(rows.map((r) => r.tag))
    expect(OAuthError.members.length).toBe(16)
  })

  describe.each(rows)("$tag", (row) => {
    it("knows its wire code, status and RFC reference", () => {
      const e = row.make()
      expect(e._tag).toBe(row.tag)
      expect(e.error).toBe(row.error)
      expect(e.status).toBe(row.status)
      expect(OAuthErrorCodes[e._tag]).toStrictEqual({ error: row.error, status: row.status, uri: row.uri })
    })

    it("renders status, body and the no-store headers", () => {
      const r = renderOAuthError(row.make())
      expect(r.status).toBe(row.status)
      expect(r.body.error).toBe(row.error)
      expect(r.body.error_uri).toBe(row.uri)
      expect(r.headers["Content-Type"]).toBe("application/json")
      expect(r.headers["Cache-Control"]).toBe("no-store")
      expect(r.headers["Pragma"]).toBe("no-cache")
      expect(r.headers["WWW-Authenticate"]).toBeUndefined()
    })

    it("carries its description in the body (server_error: a generic one)", () => {
      const r = renderOAuthError(row.make("Something specific"))
      expect(r.body.error_description).toBe(row.tag === "ServerError" ? SERVER_ERROR_TEXT : "Something specific")
      const bare = renderOAuthError(row.make())
      if (row.tag === "ServerError") expect(bare.body.error_description).toBe(SERVER_ERROR_TEXT)
      else expect("error_description" in bare.body).toBe(false)
    })

    it("carries the HttpApiSchema status annotation", () => {
      expect(HttpApiSchema.getStatus(row.cls.ast, -1)).toBe(row.status)
      expect(HttpApiSchema.getStatusError(row.cls)).toBe(row.status)
    })

    it("survives JSON through the union schema", () => {
      const e = row.make("why")
      const encoded = Schema.encodeSync(OAuthError)(e)
      expect(encoded._tag).toBe(row.tag)
      const json: unknown = JSON.parse(JSON.stringify(encoded))
      const decoded = Schema.decodeUnknownSync(OAuthError)(json)
      expect(decoded).toBeInstanceOf(row.cls)
      expect(decoded.error).toBe(row.error)
      expect(decoded.description).toBe("why")
      expect(Schema.encodeSync(OAuthError)(decoded)).toStrictEqual(encoded)
      expect(isOAuthError(decoded)).toBe(true)
    })

    it("gets a Bearer challenge on the resource endpoint only for 401 and 403", () => {
      const r = renderOAuthError(row.make(), bearer(true))
      const status = row.resourceStatus ?? row.status
      expect(r.status).toBe(status)
      if (status === 401 || status === 403) {
        expect(r.headers["WWW-Authenticate"]).toMatch(new RegExp(`^Bearer .*error="${row.error}"`))
      } else {
        expect(r.headers["WWW-Authenticate"]).toBeUndefined()
      }
    })
  })

  describe("round trip details", () => {
    it("keeps InsufficientScope.scope and TemporarilyUnavailable.retryAfter", () => {
      const scope = Schema.decodeUnknownSync(OAuthError)(
        JSON.parse(JSON.stringify(Schema.encodeSync(OAuthError)(new InsufficientScope({ scope: ["a", "b"] }))))
      )
      expect(scope._tag === "InsufficientScope" ? scope.scope : undefined).toStrictEqual(["a", "b"])
      const later = Schema.decodeUnknownSync(OAuthError)(
        JSON.parse(JSON.stringify(Schema.encodeSync(OAuthError)(new TemporarilyUnavailable({ retryAfter: 12 }))))
      )
      expect(later._tag === "TemporarilyUnavailable" ? later.retryAfter : undefined).toBe(12)
    })

    it("rejects a fractional retryAfter", () => {
      expect(() => new TemporarilyUnavailable({ retryAfter: 1.5 })).toThrow()
    })
  })

  describe("isOAuthError", () => {
    it("accepts the classes and rejects look-alikes", () => {
      expect(isOAuthError(new InvalidGrant())).toBe(true)
      expect(isOAuthError({ _tag: "InvalidGrant" })).toBe(false)
      expect(isOAuthError(new StoreError({ reason: "Corrupt", method: "m" }))).toBe(false)
      expect(isOAuthError(new Error("invalid_grant"))).toBe(false)
      expect(isOAuthError(undefined)).toBe(false)
    })
  })
})

describe("renderOAuthError challenges", () => {
  const metadata = "https://mcp.example.com/.well-known/oauth-protected-resource"

  it("names the error when a token was presented", () => {
    const r = renderOAuthError(
      new InvalidToken({ description: "Token has expired" }),
      bearer(true, { realm: "mcp", resourceMetadata: metadata })
    )
    expect(r.status).toBe(401)
    expect(r.headers["WWW-Authenticate"]).toBe(
      `Bearer realm="mcp", resource_metadata="${metadata}", error="invalid_token", error_description="Token has expired"`
    )
    expect(r.body).toStrictEqual({
      error: "invalid_token",
      error_description: "Token has expired",
      error_uri: RFC6750_3_1
    })
  })

  it("omits error= when no token was presented, keeping 401 and the body", () => {
    const r = renderOAuthError(
      new InvalidToken({ description: "No access token" }),
      bearer(false, { resourceMetadata: metadata })
    )
    expect(r.status).toBe(401)
    expect(r.headers["WWW-Authenticate"]).toBe(`Bearer resource_metadata="${metadata}"`)
    expect(r.headers["WWW-Authenticate"]).not.toContain("error")
    expect(r.body.error).toBe("invalid_token")
    expect(r.body.error_description).toBe("No access token")
  })

  it("sends a bare Bearer challenge with no parameters to give", () => {
    expect(renderOAuthError(new InvalidToken(), bearer(false)).headers["WWW-Authenticate"]).toBe("Bearer")
  })

  it("includes realm and resource_metadata only when given", () => {
    const realmOnly = renderOAuthError(new InvalidToken(), bearer(true, { realm: "r" })).headers["WWW-Authenticate"]
    expect(realmOnly).toBe(`Bearer realm="r", error="invalid_token"`)
    const metadataOnly = renderOAuthError(new InvalidToken(), bearer(true, { resourceMetadata: metadata }))
      .headers["WWW-Authenticate"]
    expect(metadataOnly).toBe(`Bearer resource_metadata="${metadata}", error="invalid_token"`)
  })

  it("names the resource's scopes on a 401 when the challenge carries them; insufficient_scope names its own", () => {
    const challenge = bearer(false, { resourceMetadata: metadata, scope: ["mcp:tools", "mcp:files"] })
    expect(renderOAuthError(new InvalidToken(), challenge).headers["WWW-Authenticate"])
      .toBe(`Bearer resource_metadata="${metadata}", scope="mcp:tools mcp:files"`)
    const stepUp = renderOAuthError(new InsufficientScope({ scope: ["mcp:admin"] }), bearer(true, { scope: ["mcp:tools"] }))
    expect(stepUp.headers["WWW-Authenticate"]).toBe(`Bearer error="insufficient_scope", scope="mcp:admin"`)
  })

  it("adds scope= to insufficient_scope for step-up", () => {
    const r = renderOAuthError(
      new InsufficientScope({ scope: ["files:read", "files:write"], description: "Needs write access" }),
      bearer(true, { resourceMetadata: metadata })
    )
    expect(r.status).toBe(403)
    expect(r.headers["WWW-Authenticate"]).toBe(
      `Bearer resource_metadata="${metadata}", error="insufficient_scope", error_description="Needs write access", scope="files:read files:write"`
    )
    expect(r.body.error).toBe("insufficient_scope")
  })

  it("challenges with Basic on invalid_client at the token endpoint", () => {
    const r = renderOAuthError(new InvalidClient({ description: "Unknown client" }), {
      challenge: { scheme: "Basic", realm: "token" }
    })
    expect(r.status).toBe(401)
    expect(r.headers["WWW-Authenticate"]).toBe(`Basic realm="token"`)
    expect(r.body).toStrictEqual({ error: "invalid_client", error_description: "Unknown client", error_uri: RFC6749_5_2 })
  })

  it("sends no Basic challenge for other token-endpoint errors", () => {
    const r = renderOAuthError(new InvalidGrant(), { challenge: { scheme: "Basic", realm: "token" } })
    expect(r.status).toBe(400)
    expect(r.headers["WWW-Authenticate"]).toBeUndefined()
  })

  it("renders invalid_client as 401 without a challenge when none is given", () => {
    const r = renderOAuthError(new InvalidClient())
    expect(r.status).toBe(401)
    expect(r.headers["WWW-Authenticate"]).toBeUndefined()
  })
})

describe("renderOAuthError with a DPoP challenge (RFC 9449 §7.1, §7.2)", () => {
  const metadata = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
  const resource = (tokenPresented: boolean, presented: boolean) => ({
    challenge: {
      scheme: "Bearer" as const,
      resourceMetadata: metadata,
      scope: ["mcp:tools"],
      tokenPresented,
      dpop: { algs: ["ES256", "PS256"], presented }
    }
  })
  /** The challenges of one header: `Bearer ...` and `DPoP ...`, split at the second scheme. */
  const challenges = (header: string) => {
    const at = header.indexOf(", DPoP")
    return { bearer: parseChallenge(header.slice(0, at)), dpop: parseChallenge(header.slice(at + 2)) }
  }

  it("without a token: both schemes, no error in either, algs on DPoP", () => {
    const r = renderOAuthError(new InvalidToken({ description: "an access token is required" }), resource(false, false))
    expect(r.status).toBe(401)
    const { bearer, dpop } = challenges(r.headers["WWW-Authenticate"] ?? "")
    expect(bearer).toStrictEqual({ scheme: "Bearer", params: { resource_metadata: metadata, scope: "mcp:tools" } })
    expect(dpop).toStrictEqual({ scheme: "DPoP", params: { resource_metadata: metadata, scope: "mcp:tools", algs: "ES256 PS256" } })
  })

  it("a Bearer request's error goes in the Bearer challenge", () => {
    const r = renderOAuthError(new InvalidToken({ description: "the access token is DPoP-bound" }), resource(true, false))
    const { bearer, dpop } = challenges(r.headers["WWW-Authenticate"] ?? "")
    expect(bearer.params["error"]).toBe("invalid_token")
    expect(bearer.params["error_description"]).toBe("the access token is DPoP-bound")
    expect(dpop.params["error"]).toBeUndefined()
  })

  it("a DPoP request's error goes in the DPoP challenge; insufficient_scope stays 403", () => {
    const r = renderOAuthError(new InvalidToken({ description: "Invalid DPoP key binding" }), resource(true, true))
    expect(r.status).toBe(401)
    const { bearer, dpop } = challenges(r.headers["WWW-Authenticate"] ?? "")
    expect(bearer.params["error"]).toBeUndefined()
    expect(dpop.params).toStrictEqual({
      resource_metadata: metadata,
      error: "invalid_token",
      error_description: "Invalid DPoP key binding",
      scope: "mcp:tools",
      algs: "ES256 PS256"
    })
    const stepUp = renderOAuthError(new InsufficientScope({ scope: ["mcp:admin"] }), resource(true, true))
    expect(stepUp.status).toBe(403)
    expect(challenges(stepUp.headers["WWW-Authenticate"] ?? "").dpop.params["scope"]).toBe("mcp:admin")
  })

  it("invalid_dpop_proof: 401 at the resource with the error on DPoP; 400 without a challenge at the token endpoint", () => {
    const atResource = renderOAuthError(new InvalidDpopProof({ description: "the DPoP proof was already used" }), resource(true, false))
    expect(atResource.status).toBe(401)
    const { bearer, dpop } = challenges(atResource.headers["WWW-Authenticate"] ?? "")
    expect(bearer.params["error"]).toBeUndefined()
    expect(dpop.params["error"]).toBe("invalid_dpop_proof")
    const atToken = renderOAuthError(new InvalidDpopProof({ description: "x" }), { challenge: { scheme: "Basic", realm: "token" } })
    expect(atToken.status).toBe(400)
    expect(atToken.headers["WWW-Authenticate"]).toBeUndefined()
    expect(atToken.body.error).toBe("invalid_dpop_proof")
  })

  it("use_dpop_nonce carries its nonce in DPoP-Nonce, at the token endpoint (400) and the resource (401)", () => {
    const error = new UseDpopNonce({ description: "nonce required", nonce: "abc.def" })
    const atToken = renderOAuthError(error)
    expect(atToken.status).toBe(400)
    expect(atToken.headers["DPoP-Nonce"]).toBe("abc.def")
    const atResource = renderOAuthError(error, resource(true, true))
    expect(atResource.status).toBe(401)
    expect(atResource.headers["DPoP-Nonce"]).toBe("abc.def")
    expect(challenges(atResource.headers["WWW-Authenticate"] ?? "").dpop.params["error"]).toBe("use_dpop_nonce")
    expect(renderOAuthError(new UseDpopNonce()).headers["DPoP-Nonce"]).toBeUndefined()
  })
})

describe("renderOAuthError Retry-After", () => {
  it("defaults to 5 seconds", () => {
    const r = renderOAuthError(new TemporarilyUnavailable())
    expect(r.status).toBe(503)
    expect(r.headers["Retry-After"]).toBe("5")
  })

  it("uses an explicit retryAfter", () => {
    expect(renderOAuthError(new TemporarilyUnavailable({ retryAfter: 30 })).headers["Retry-After"]).toBe("30")
  })

  it("is only sent for temporarily_unavailable", () => {
    expect(renderOAuthError(new ServerError()).headers["Retry-After"]).toBeUndefined()
  })
})

describe("renderOAuthError safety", () => {
  it("never puts a server_error description on the wire", () => {
    const r = renderOAuthError(
      new ServerError({ description: "redis://admin:hunter2@10.0.0.5 refused" }),
      bearer(true, { realm: "mcp" })
    )
    expect(r.status).toBe(500)
    expect(r.body).toStrictEqual({ error: "server_error", error_description: SERVER_ERROR_TEXT, error_uri: RFC6749_4_1_2_1 })
    expect(JSON.stringify(r)).not.toContain("hunter2")
  })

  it("keeps a hostile description to one safe, parseable header line", () => {
    const hostile = "bad\"\r\nSet-Cookie: session=evil\\\u0000x\u20ac"
    const r = renderOAuthError(
      new InvalidToken({ description: hostile }),
      bearer(true, { realm: "a\"b\r\nX-Injected: 1", resourceMetadata: metadataWith("\n") })
    )
    const header = r.headers["WWW-Authenticate"] ?? ""
    expect(header).toMatch(/^[\u0020-\u007e]+$/)
    expect(header.split(/\r|\n/)).toHaveLength(1)
    const parsed = parseChallenge(header)
    expect(parsed.scheme).toBe("Bearer")
    expect(Object.keys(parsed.params)).toStrictEqual(["realm", "resource_metadata", "error", "error_description"])
    expect(parsed.params["error"]).toBe("invalid_token")
    expect(parsed.params["error_description"]).toBe("bad\" Set-Cookie: session=evil\\ x?")
    expect(parsed.params["realm"]).toBe("a\"b X-Injected: 1")
    expect(Object.values(r.headers).every((v) => /^[\u0020-\u007e]*$/.test(v))).toBe(true)
  })
})

function metadataWith(injected: string): string {
  return `https://mcp.example.com/meta${injected}Location: https://evil.example`
}

describe("toOAuthError", () => {
  it("passes an OAuth error through unchanged", () => {
    const e = new InvalidGrant({ description: "Code already used" })
    expect(toOAuthError(e)).toBe(e)
  })

  it("maps a store outage to temporarily_unavailable with Retry-After 5", () => {
    const e = toOAuthError(new StoreError({ reason: "Unavailable", method: "TokenStore.consumeCode", description: "ETIMEDOUT" }))
    expect(e).toBeInstanceOf(TemporarilyUnavailable)
    expect(e._tag === "TemporarilyUnavailable" ? e.retryAfter : undefined).toBe(5)
    expect(e.description).not.toContain("ETIMEDOUT")
    expect(e.description).not.toContain("TokenStore")
    const r = renderOAuthError(e)
    expect(r.status).toBe(503)
    expect(r.headers["Retry-After"]).toBe("5")
  })

  it.each(["Corrupt", "DecryptFailed", "Conflict", "Invalid"] as const)("maps StoreError %s to an opaque server_error", (reason) => {
    const e = toOAuthError(
      new StoreError({ reason, method: "ClientStore.get", description: "key k1", cause: new Error("secret=abc") })
    )
    expect(e).toBeInstanceOf(ServerError)
    expect(e.description).toBe(SERVER_ERROR_TEXT)
  })

  it("maps any other value to an opaque server_error", () => {
    for (const u of [new Error("password=hunter2"), "boom", undefined, { _tag: "InvalidGrant" }]) {
      const e = toOAuthError(u)
      expect(e).toBeInstanceOf(ServerError)
      expect(JSON.stringify(renderOAuthError(e))).not.toContain("hunter2")
    }
  })
})

describe("logDetail", () => {
  it("describes a StoreError by tag, reason and method without its cause's data", () => {
    const cause = new TypeError("connect redis://admin:hunter2@db failed")
    const line = logDetail(new StoreError({ reason: "Unavailable", method: "TokenStore.consumeCode", cause }))
    expect(line).toContain("StoreError")
    expect(line).toContain("reason=Unavailable")
    expect(line).toContain("TokenStore.consumeCode")
    expect(line).toContain("cause=TypeError")
    expect(line).not.toContain("hunter2")
  })

  it("describes an OAuth error by tag, code and description, on one line", () => {
    const line = logDetail(new ServerError({ description: "decrypt failed\r\nfor record" }))
    expect(line).toBe(`ServerError error=server_error status=500 description="decrypt failed for record"`)
  })

  it("keeps only the type name of an unknown defect", () => {
    expect(logDetail(new RangeError("token=abc123"))).toBe("Defect RangeError")
    expect(logDetail("token=abc123")).toBe("Defect string")
    const named = new Error("x")
    named.name = "evil\nname=abc123"
    expect(logDetail(named)).toBe("Defect object")
  })
})
