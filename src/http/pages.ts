/**
 * Server-rendered HTML: one layout and escaping. Pages carry no scripts and
 * load nothing from elsewhere (see `htmlResponse`'s Content-Security-Policy).
 */

const ESCAPES: Readonly<Record<string, string>> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" }

/** Text made safe for HTML element content and quoted attribute values. */
export const escapeHtml = (value: string): string => value.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c)

/**
 * One stylesheet: readable on a 375 px phone and a desktop alike (nothing
 * wider than the viewport: border-box sizing, fieldsets allowed to shrink,
 * long ids and URLs wrapped), Approve filled as the primary action, Deny
 * outlined.
 */
const STYLE = `*,*::before,*::after{box-sizing:border-box}
body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;color:#222;overflow-wrap:anywhere}
h1{font-size:1.4rem;line-height:1.3}code{background:#f3f3f3;padding:0 .25rem;overflow-wrap:anywhere;word-break:break-word}
small{color:#555}fieldset{border:1px solid #ccc;border-radius:6px;margin:1rem 0;padding:.5rem .75rem;min-width:0}
label{display:block;margin:.5rem 0}label.scope{display:flex;gap:.6rem;align-items:flex-start}
label.scope input{margin-top:.35rem;flex:none}.scope-text{display:flex;flex-direction:column;align-items:flex-start;min-width:0}
.scope-description{color:#444;font-size:.92rem}ul.scopes{padding-left:1.2rem}
input[type=password]{display:block;width:100%;max-width:100%;padding:.5rem;margin-top:.25rem;font:inherit}
.actions{display:flex;flex-wrap:wrap;gap:.75rem;margin-top:1.25rem}
button{font:inherit;padding:.6rem 1.4rem;border-radius:6px;cursor:pointer}
button.primary{background:#1d4ed8;border:1px solid #1d4ed8;color:#fff;font-weight:600}
button.primary:hover,button.primary:focus{background:#1e40af}
button.secondary{background:#fff;border:1px solid #888;color:#333}
.error{color:#a00}.identity{margin-bottom:.25rem}`

/** A whole page around `body` (already escaped HTML). */
export const page = (title: string, body: string): string =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
  `<title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>`

/** A page telling the user why an authorization request cannot go on (never redirected to an unverified client). */
export const errorPage = (title: string, description: string): string =>
  page(title, `<h1>${escapeHtml(title)}</h1><p class="error">${escapeHtml(description)}</p>`)
