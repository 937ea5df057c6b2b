/**
 * Server-rendered HTML: one layout and escaping. Pages carry no scripts and
 * load nothing from elsewhere (see `htmlResponse`'s Content-Security-Policy).
 */

const ESCAPES: Readonly<Record<string, string>> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" }

/** Text made safe for HTML element content and quoted attribute values. */
export const escapeHtml = (value: string): string => value.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c)

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}code{background:#f3f3f3;padding:0 .25rem}fieldset{border:1px solid #ccc;margin:1rem 0}
label{display:block;margin:.25rem 0}input[type=password]{width:100%;padding:.4rem}
.actions{display:flex;gap:1rem;margin-top:1rem}button{padding:.5rem 1.2rem}.error{color:#a00}`

/** A whole page around `body` (already escaped HTML). */
export const page = (title: string, body: string): string =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
  `<title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>`

/** A page telling the user why an authorization request cannot go on (never redirected to an unverified client). */
export const errorPage = (title: string, description: string): string =>
  page(title, `<h1>${escapeHtml(title)}</h1><p class="error">${escapeHtml(description)}</p>`)
