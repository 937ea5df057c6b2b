/**
 * The consent page: who is asking (the client's self-asserted name; for a
 * Client ID Metadata Document client, the host serving its document, which
 * it has proved; and the host its redirect URI points at, which a client
 * cannot fake), the resource being granted, the scopes it asked for as
 * checkboxes with their descriptions the user may untick, the API-key
 * sign-in, and Approve (the primary action) / Deny. Every value from the
 * client or the request is escaped.
 *
 * Form fields: `transaction`, `csrf`, `api_key`, `action` (`approve` or
 * `deny`, the button pressed), and one checkbox per requested scope named
 * `scope_<i>` (its position in the request) whose value is the scope, so
 * no field name repeats (`readForm` refuses repeated parameters).
 */
import { Context } from "effect"
import { verifiedClientHost } from "../../oauth/clientMetadataDocument.ts"
import type { RegisteredClient } from "../../schema/client.ts"
import type { Transaction } from "../../schema/transaction.ts"
import type { FormParams } from "../body.ts"
import { escapeHtml, page } from "../pages.ts"
import { CSRF_FIELD } from "./csrf.ts"

/** What the consent page says each scope allows (scope -> description); a scope without one gets `UNDESCRIBED_SCOPE`. */
export class ScopeDescriptions extends Context.Tag("mcp-oauth-store/ScopeDescriptions")<
  ScopeDescriptions,
  Readonly<Record<string, string>>
>() {}

/** The name of the checkbox of the `index`th requested scope. */
export const scopeField = (index: number): string => `scope_${index}`

const SCOPE_FIELD = /^scope_\d+$/

/** The scopes the user left ticked: the requested scopes (in requested order) that a `scope_<i>` field names. */
export const grantedScopesFrom = (form: FormParams, requested: ReadonlyArray<string>): ReadonlyArray<string> => {
  const ticked = new Set(Object.entries(form).filter(([name]) => SCOPE_FIELD.test(name)).map(([, value]) => value))
  return requested.filter((scope) => ticked.has(scope))
}

/** The name shown for a client: its `client_name`, else its id. */
export const clientDisplayName = (client: RegisteredClient): string => {
  const name = client.metadata.client_name?.trim()
  return name === undefined || name === "" ? client.clientId : name
}

/** Where the user is sent afterwards: the redirect URI's host (its scheme for a host-less custom scheme). */
export const redirectHost = (redirectUri: string): string => {
  if (!URL.canParse(redirectUri)) return redirectUri
  const url = new URL(redirectUri)
  return url.host === "" ? url.protocol : url.host
}

/**
 * The Content-Security-Policy source that lets the consent form's answer
 * redirect to the client: browsers check `form-action` against the redirect
 * too. The redirect URI's origin; for a custom scheme (a native app), the
 * scheme; for an IPv6 literal host (no CSP syntax), the scheme.
 */
export const formActionSource = (redirectUri: string): string | undefined => {
  if (!URL.canParse(redirectUri)) return undefined
  const url = new URL(redirectUri)
  if (url.protocol === "https:" || url.protocol === "http:") return url.hostname.startsWith("[") ? url.protocol : url.origin
  return /^[a-z][a-z0-9+.-]*:$/i.test(url.protocol) ? url.protocol : undefined
}

export interface ConsentView {
  readonly client: RegisteredClient
  readonly transaction: Transaction
  readonly csrf: string
  /** The form's target: the authorize path. */
  readonly action: string
  /** Whether an API key can sign anyone in; without, only Deny is offered. */
  readonly signInConfigured: boolean
  /** Shown above the form (a failed sign-in). */
  readonly error?: string | undefined
  /** The scopes to show ticked (after a failed sign-in: what the user had left ticked); default all. */
  readonly ticked?: ReadonlyArray<string> | undefined
  /** What each scope allows, shown beside it. */
  readonly scopeDescriptions?: Readonly<Record<string, string>> | undefined
}

/** Shown for a scope without a configured description. */
export const UNDESCRIBED_SCOPE = "No description is configured for this permission."

const hidden = (name: string, value: string) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`

const describe = (view: ConsentView, scope: string): string =>
  `<span class="scope-text"><code>${escapeHtml(scope)}</code>` +
  `<span class="scope-description">${escapeHtml(view.scopeDescriptions?.[scope] ?? UNDESCRIBED_SCOPE)}</span></span>`

const scopeList = (view: ConsentView): string => {
  const { scopes } = view.transaction
  if (scopes.length === 0) return `<p>No specific permissions were requested.</p>`
  if (!view.signInConfigured) {
    return `<p>It asks for:</p><ul class="scopes">${scopes.map((s) => `<li>${describe(view, s)}</li>`).join("")}</ul>`
  }
  const ticked = view.ticked ?? scopes
  const boxes = scopes.map((scope, index) =>
    `<label class="scope"><input type="checkbox" name="${scopeField(index)}" value="${escapeHtml(scope)}"${
      ticked.includes(scope) ? " checked" : ""
    }> ${describe(view, scope)}</label>`
  ).join("")
  return `<fieldset><legend>Permissions (untick any you do not want to grant)</legend>${boxes}</fieldset>`
}

/** Who the client is: a metadata-document client's verified host, then the name it gives itself (unverified). */
const identity = (client: RegisteredClient, displayName: string): string => {
  const name = escapeHtml(displayName)
  const verified = verifiedClientHost(client)
  if (verified !== undefined) {
    const named = displayName === client.clientId ? "" : ` It calls itself <strong>${name}</strong> (a name it chose; not verified).`
    return `<p class="identity">Verified identity: <strong class="client-host">${escapeHtml(verified)}</strong> ` +
      `<small>(it publishes its client metadata at <code>${escapeHtml(client.clientId)}</code>)</small>.${named}</p>`
  }
  const clientId = displayName === client.clientId ? "" : ` <small>(client <code>${escapeHtml(client.clientId)}</code>)</small>`
  return `<p class="identity"><strong>${name}</strong>${clientId} <small>(a name the client chose; not verified)</small></p>`
}

/** The consent page's HTML. */
export const consentPage = (view: ConsentView): string => {
  const displayName = clientDisplayName(view.client)
  const verified = verifiedClientHost(view.client)
  const title = verified ?? displayName
  const host = escapeHtml(redirectHost(view.transaction.redirectUri))
  const resource = view.transaction.resource === undefined
    ? ""
    : `<p class="resource">Access to: <code>${escapeHtml(view.transaction.resource)}</code></p>`
  const error = view.error === undefined ? "" : `<p class="error" role="alert">${escapeHtml(view.error)}</p>`
  const signIn = view.signInConfigured
    ? `<label>API key <input type="password" name="api_key" autocomplete="current-password" required autofocus></label>`
    : `<p class="error">Sign-in is not configured on this server (no API keys are set), so this request can only be denied.</p>`
  const approve = view.signInConfigured ? `<button type="submit" name="action" value="approve" class="primary">Approve</button>` : ""
  const body = `<h1>Authorize ${escapeHtml(title)}</h1>` +
    identity(view.client, displayName) +
    `<p>It wants access to this server on your behalf.</p>` +
    resource +
    `<p>If you approve, you will be sent to <strong class="redirect-host">${host}</strong>.</p>` +
    error +
    `<form method="post" action="${escapeHtml(view.action)}">` +
    hidden("transaction", view.transaction.id) +
    hidden(CSRF_FIELD, view.csrf) +
    scopeList(view) +
    signIn +
    `<div class="actions">${approve}<button type="submit" name="action" value="deny" formnovalidate class="secondary">Deny</button></div>` +
    `</form>`
  return page(`Authorize ${title}`, body)
}
