/**
 * OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document,
 * MCP 2025-11-25): a `client_id` that is an https URL names a JSON document
 * describing the client. The document is fetched through the
 * `ClientMetadataDocuments` port (SSRF-safe, see its Node implementation),
 * validated here (its `client_id` is its URL exactly; a public client;
 * redirect URIs as for a registration), and cached in the `ClientStore` as a
 * client record that expires (its `Cache-Control` lifetime, kept between 60 s
 * and 1 h). `findClient` is how the engine looks up every client.
 */
import { Duration, Effect, Option } from "effect"
import { InvalidClient } from "../errors/OAuthError.ts"
import type { ClientMetadata, RegisteredClient } from "../schema/client.ts"
import { ClientMetadataDocuments } from "../services/ClientMetadataDocuments.ts"
import { ClientStore } from "../services/ClientStore.ts"
import type { StoreError } from "../services/StoreError.ts"
import { type ClientMetadataLimits, DEFAULT_CLIENT_METADATA_LIMITS, OAuthConfig } from "./config.ts"
import { validateClientMetadata } from "./registration.ts"
import { traced } from "../internal/traced.ts"

/** The shortest a fetched document is cached, whatever its `Cache-Control` says (one authorization needs it several times). */
export const MIN_DOCUMENT_TTL = Duration.seconds(60)
/** The longest a fetched document is cached, whatever its `Cache-Control` says. */
export const MAX_DOCUMENT_TTL = Duration.hours(1)
/** How long a document without `max-age` is cached. */
export const DEFAULT_DOCUMENT_TTL = Duration.minutes(5)

/** Whether a `client_id` names a metadata document (an https URL) rather than a registered client. */
export const isClientIdUrl = (clientId: string): boolean => clientId.startsWith("https://")

/**
 * Why `clientId` cannot be a client id URL (the draft's §3): https, a path
 * other than "/", no dot segments, no fragment, no user info, written in its
 * normal form (what the URL parser would write, so one client has one id).
 */
export const clientIdUrlProblem = (clientId: string): string | undefined => {
  if (!URL.canParse(clientId)) return "is not a URL"
  const url = new URL(clientId)
  if (url.protocol !== "https:") return "is not an https URL"
  if (url.username !== "" || url.password !== "") return "carries user info"
  if (clientId.includes("#")) return "has a fragment"
  if (url.pathname === "/" || url.pathname === "") return "has no path"
  const rawPath = clientId.slice(clientId.indexOf("/", "https://".length)).split("?")[0] ?? ""
  if (rawPath.split("/").some((segment) => segment === "." || segment === ".." || /^%2e(%2e)?$/i.test(segment))) {
    return "has dot segments"
  }
  if (url.href !== clientId) return "is not in its normal form"
  return undefined
}

/**
 * How long to cache a document, from its `Cache-Control`: `max-age` (or
 * `s-maxage`) seconds, `DEFAULT_DOCUMENT_TTL` without one, the minimum for
 * `no-store` / `no-cache`; always between `MIN_DOCUMENT_TTL` and `MAX_DOCUMENT_TTL`.
 */
export const documentTtl = (cacheControl: string | undefined): Duration.Duration => {
  const directives = (cacheControl ?? "").toLowerCase().split(",").map((d) => d.trim())
  let ttl = DEFAULT_DOCUMENT_TTL
  const maxAge = directives.map((d) => /^(?:s-maxage|max-age)\s*=\s*"?(\d+)"?$/.exec(d)?.[1]).find((v) => v !== undefined)
  if (maxAge !== undefined) ttl = Duration.seconds(Number(maxAge))
  if (directives.includes("no-store") || directives.includes("no-cache")) ttl = MIN_DOCUMENT_TTL
  return Duration.clamp(ttl, { minimum: MIN_DOCUMENT_TTL, maximum: MAX_DOCUMENT_TTL })
}

const unusable = (description: string) => new InvalidClient({ description: `the client's metadata document ${description}` })

const isRecord = (u: unknown): u is Readonly<Record<string, unknown>> => typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * Validate a fetched document for the client id `url`: a JSON object whose
 * `client_id` is `url` exactly, without a secret, describing a public client
 * (`token_endpoint_auth_method` `none`, the default), with valid redirect
 * URIs, grant types, scopes and URL members (the registration rules, within
 * `limits`).
 */
export const validateClientMetadataDocument = (
  url: string,
  document: unknown,
  scopesSupported: ReadonlyArray<string> | undefined,
  limits: ClientMetadataLimits = DEFAULT_CLIENT_METADATA_LIMITS
): Effect.Effect<ClientMetadata, InvalidClient> => {
  if (!isRecord(document)) return Effect.fail(unusable("is not a JSON object"))
  if (document["client_id"] !== url) return Effect.fail(unusable("names another client_id than its URL"))
  if ("client_secret" in document || "client_secret_expires_at" in document) {
    return Effect.fail(unusable("contains a client secret"))
  }
  return validateClientMetadata(document, scopesSupported, { publicOnly: true, limits }).pipe(
    Effect.mapError((error) => unusable(`is invalid: ${error.description ?? error.error}`))
  )
}

/** Fetch, validate and cache the document of a client id URL. */
const resolveDocument = (
  documents: ClientMetadataDocuments.Service,
  url: string
): Effect.Effect<RegisteredClient, InvalidClient | StoreError, ClientStore | OAuthConfig> =>
  Effect.gen(function*() {
    const problem = clientIdUrlProblem(url)
    if (problem !== undefined) return yield* Effect.fail(new InvalidClient({ description: `client_id ${problem}` }))
    const config = yield* OAuthConfig
    const fetched = yield* documents.fetch(url).pipe(
      Effect.tapError((error) =>
        Effect.logWarning("client metadata document refused").pipe(
          Effect.annotateLogs({ client_id: url, reason: error.reason, detail: error.description })
        )
      ),
      Effect.mapError((error) => unusable(`could not be fetched (${error.description})`))
    )
    const metadata = yield* validateClientMetadataDocument(url, fetched.document, config.scopesSupported, config.clientMetadataLimits).pipe(
      Effect.tapError((error) =>
        Effect.logWarning("client metadata document refused").pipe(
          Effect.annotateLogs({ client_id: url, reason: "Invalid", detail: error.description ?? "" })
        )
      )
    )
    const ttl = documentTtl(fetched.cacheControl)
    const client = yield* (yield* ClientStore).register({ clientId: url, metadata, ttl })
    yield* Effect.logInfo("client metadata document fetched").pipe(
      Effect.annotateLogs({ client_id: url, cached_seconds: Duration.toSeconds(ttl) })
    )
    return client
  })

/**
 * The client a `client_id` names. A registered client comes from the
 * `ClientStore`. With a `ClientMetadataDocuments` service provided, an https
 * URL is a Client ID Metadata Document: served from the store while its
 * cached copy lives, else fetched, validated and cached again; a document
 * that cannot be fetched or is invalid fails with `InvalidClient` (for that
 * client only: nothing is cached, nothing else is touched). Without the
 * service, such an id is unknown (`None`).
 */
export const findClient = (
  clientId: string
): Effect.Effect<Option.Option<RegisteredClient>, InvalidClient | StoreError, ClientStore | OAuthConfig> =>
  Effect.gen(function*() {
    const cached = yield* (yield* ClientStore).get(clientId)
    if (Option.isSome(cached) || !isClientIdUrl(clientId)) return cached
    const documents = yield* Effect.serviceOption(ClientMetadataDocuments)
    if (Option.isNone(documents)) return Option.none()
    return Option.some(yield* resolveDocument(documents.value, clientId))
  }).pipe(traced("OAuth.findClient"))

/** Whether this server resolves client id URLs (a `ClientMetadataDocuments` service is provided): what its metadata advertises. */
export const clientMetadataDocumentsSupported: Effect.Effect<boolean> = Effect.map(
  Effect.serviceOption(ClientMetadataDocuments),
  Option.isSome
)

/** The host of a client id URL: the identity a metadata document's client has proved (it serves the document there). */
export const verifiedClientHost = (client: RegisteredClient): string | undefined =>
  isClientIdUrl(client.clientId) && URL.canParse(client.clientId) ? new URL(client.clientId).host : undefined
