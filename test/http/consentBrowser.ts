/**
 * Playing the user on the real consent page with fetch, as a browser would:
 * open the authorization URL, keep the CSRF cookie, read the form (hidden
 * fields, the ticked scope boxes, its action) and submit it with the page's
 * origin. For end-to-end tests against the server process.
 */

export interface ConsentForm {
  /** The page as served. */
  readonly page: Response
  readonly html: string
  /** `name=value` of the CSRF cookie, to send back. */
  readonly cookie: string
  /** The URL the form posts to. */
  readonly action: URL
  readonly transaction: string
  readonly csrf: string
  /** The scope checkboxes: field name and scope, in page order. */
  readonly scopes: ReadonlyArray<{ readonly field: string; readonly scope: string }>
}

const ENTITIES: Readonly<Record<string, string>> = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": "\"", "&#39;": "'" }
const unescapeHtml = (value: string): string => value.replace(/&(?:amp|lt|gt|quot|#39);/g, (e) => ENTITIES[e] ?? e)

const attribute = (html: string, pattern: RegExp, what: string): string => {
  const match = pattern.exec(html)
  if (match?.[1] === undefined) throw new Error(`the consent page has no ${what}`)
  return unescapeHtml(match[1])
}

/** Open the consent page for an authorization URL and read its form. */
export const openConsent = async (authorizationUrl: URL | string): Promise<ConsentForm> => {
  const page = await fetch(authorizationUrl, { redirect: "manual" })
  const html = await page.text()
  if (page.status !== 200) throw new Error(`expected the consent page, got ${page.status}: ${html.slice(0, 300)}`)
  const cookie = /^[^;]+/.exec(page.headers.get("set-cookie") ?? "")?.[0]
  if (cookie === undefined) throw new Error("the consent page set no CSRF cookie")
  const scopes = [...html.matchAll(/<input type="checkbox" name="(scope_\d+)" value="([^"]*)"/g)]
    .map((m) => ({ field: m[1] ?? "", scope: unescapeHtml(m[2] ?? "") }))
  return {
    page,
    html,
    cookie,
    action: new URL(attribute(html, /<form method="post" action="([^"]*)"/, "form"), authorizationUrl),
    transaction: attribute(html, /name="transaction" value="([^"]*)"/, "transaction field"),
    csrf: attribute(html, /name="csrf" value="([^"]*)"/, "csrf field"),
    scopes
  }
}

export interface ConsentChoice {
  readonly action: "approve" | "deny"
  readonly apiKey?: string
  /** Scopes to untick before approving. */
  readonly untick?: ReadonlyArray<string>
  /** Extra or replaced headers (a test of a forged submission). */
  readonly headers?: Readonly<Record<string, string>>
}

/** Submit the form as the browser would (cookie, same-origin `Origin`); the response is not followed. */
export const submitConsent = (form: ConsentForm, choice: ConsentChoice): Promise<Response> => {
  const fields = new URLSearchParams({ transaction: form.transaction, csrf: form.csrf, action: choice.action })
  if (choice.apiKey !== undefined) fields.set("api_key", choice.apiKey)
  for (const { field, scope } of form.scopes) {
    if (!(choice.untick ?? []).includes(scope)) fields.set(field, scope)
  }
  return fetch(form.action, {
    method: "POST",
    redirect: "manual",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      cookie: form.cookie,
      origin: form.action.origin,
      ...choice.headers
    },
    body: fields.toString()
  })
}
