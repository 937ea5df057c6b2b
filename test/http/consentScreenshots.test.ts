/**
 * The consent page as a person sees it: Debian's Chromium (headless, driven
 * by playwright-core; no downloaded browser) opens the real server's consent
 * page at 1280 px and at 375 px (a phone). Nothing may be wider than the
 * viewport (no horizontal scroll), every element stays inside it, Approve is
 * the visibly primary action (filled, before Deny), and the browser really
 * submits the form: no scope ticked is refused with a message, a ticked one
 * reaches the client's redirect URI with a code. Screenshots go to a
 * temporary directory (printed), never into the repository.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { existsSync, mkdtempSync } from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type Browser, chromium, type Page } from "playwright-core"
import { type ServerProcess, startServer } from "../support/server.ts"

const CHROMIUM = "/usr/bin/chromium"
/** The flags this machine kind is known to work with (no sandbox as root, no background network). */
const CHROMIUM_FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]
const ALICE_KEY = "alice-browser-key-0123456789"
const CALLBACK_PATH = "/callback/with/a/rather/long/path/that/a/native/app/might/use"

let server: ServerProcess
let browser: Browser
/** The native app's loopback listener: where the browser lands after approving. */
let listener: Server
let REDIRECT = ""
const arrivals: Array<URL> = []
const shots = mkdtempSync(join(tmpdir(), "consent-screenshots-"))

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)`)
  server = await startServer({
    env: {
      API_KEYS: `alice=${ALICE_KEY}`,
      SCOPE_DESCRIPTIONS: JSON.stringify({ "mcp:upstream": "Call your account at the upstream identity provider through this server, with the tokens it keeps for you." })
    }
  })
  listener = createServer((request, response) => {
    const url = new URL(request.url ?? "/", REDIRECT)
    // Chromium also asks for /favicon.ico: only the callback counts.
    if (url.pathname === CALLBACK_PATH) arrivals.push(url)
    response.writeHead(200, { "content-type": "text/plain" }).end("back at the client")
  })
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve))
  REDIRECT = `http://127.0.0.1:${(listener.address() as AddressInfo).port}${CALLBACK_PATH}`
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS })
  process.stdout.write(`consent screenshots: ${shots}\n`)
}, 60_000)
afterAll(async () => {
  await browser?.close()
  await server?.stop()
  await new Promise<void>((resolve) => listener?.close(() => resolve()))
})

/** A fresh client with a long name and its authorization URL (both scopes). */
const authorizationUrl = async () => {
  const registered = await fetch(`${server.url}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: "An MCP client with a quite long name that goes on and on for a while",
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: "none"
    })
  })
  const { client_id } = await registered.json() as { client_id: string }
  const url = new URL(`${server.url}/authorize`)
  url.search = new URLSearchParams({
    response_type: "code",
    client_id,
    redirect_uri: REDIRECT,
    scope: "mcp:tools mcp:upstream",
    state: "browser-state",
    code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    code_challenge_method: "S256",
    resource: `${server.url}/mcp`
  }).toString()
  return url.toString()
}

/** What the layout looks like in the page: overflow, and how the two buttons are drawn. */
const layout = (page: Page) =>
  page.evaluate(() => {
    const root = document.documentElement
    const wider = Array.from(document.querySelectorAll("body *"))
      .map((el) => ({ tag: el.tagName, cls: el.className, right: el.getBoundingClientRect().right }))
      .filter((box) => box.right > root.clientWidth + 0.5)
    const style = (selector: string) => {
      const el = document.querySelector(selector)
      if (el === null) return undefined
      const s = getComputedStyle(el)
      const box = el.getBoundingClientRect()
      return { background: s.backgroundColor, color: s.color, weight: s.fontWeight, top: box.top, left: box.left, width: box.width }
    }
    const buttons = Array.from(document.querySelectorAll("form button")).map((b) => b.getAttribute("value"))
    return {
      scrollWidth: root.scrollWidth,
      clientWidth: root.clientWidth,
      wider,
      approve: style("button[value=approve]"),
      deny: style("button[value=deny]"),
      buttons
    }
  })

/** Relative luminance contrast of two CSS rgb() colours (WCAG). */
const contrast = (a: string, b: string): number => {
  const lum = (c: string) => {
    const [r = 0, g = 0, bl = 0] = (c.match(/\d+(\.\d+)?/g) ?? []).map(Number).map((v) => v / 255)
      .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4))
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl
  }
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x)
  return ((hi ?? 0) + 0.05) / ((lo ?? 0) + 0.05)
}

describe("the consent page in Chromium", () => {
  for (const width of [1280, 375]) {
    it(`at ${width} px: no horizontal scroll, everything inside the viewport, Approve the visible primary action`, { timeout: 60_000 }, async () => {
      const context = await browser.newContext({ viewport: { width, height: 900 }, deviceScaleFactor: 1 })
      try {
        const page = await context.newPage()
        const response = await page.goto(await authorizationUrl())
        expect(response?.status()).toBe(200)
        await page.screenshot({ path: join(shots, `consent-${width}.png`), fullPage: true })
        const seen = await layout(page)
        expect(seen.scrollWidth).toBeLessThanOrEqual(seen.clientWidth)
        expect(seen.wider).toEqual([])
        expect(seen.buttons).toEqual(["approve", "deny"])
        const { approve, deny } = seen
        if (approve === undefined || deny === undefined) throw new Error("the page has no Approve or Deny button")
        // Filled, with legible text, and unlike Deny.
        expect(approve.background).not.toBe(deny.background)
        expect(contrast(approve.background, approve.color)).toBeGreaterThan(4.5)
        expect(contrast(approve.background, "rgb(255, 255, 255)")).toBeGreaterThan(3)
        expect(Number(approve.weight)).toBeGreaterThan(Number(deny.weight) - 1)
        // Approve comes first (left of, or above, Deny).
        expect(approve.top < deny.top || (approve.top === deny.top && approve.left < deny.left)).toBe(true)
        expect(await page.locator(".scope-description").first().isVisible()).toBe(true)
        expect(await page.textContent("body")).toContain("Call your account at the upstream identity provider")
        expect(await page.textContent("body")).toContain(`Access to: ${server.url}/mcp`)
      } finally {
        await context.close()
      }
    })
  }

  it("the browser submits the form: nothing ticked is refused with a message; then approve reaches the client with a code", { timeout: 60_000 }, async () => {
    const context = await browser.newContext({ viewport: { width: 375, height: 900 } })
    try {
      const page = await context.newPage()
      const before = arrivals.length
      await page.goto(await authorizationUrl())
      for (const box of await page.locator("input[type=checkbox]").all()) await box.uncheck()
      await page.fill("input[name=api_key]", ALICE_KEY)
      await Promise.all([page.waitForLoadState("load"), page.click("button[value=approve]")])
      expect(await page.textContent(".error")).toContain("Tick at least one permission to approve, or choose Deny.")
      const refused = await layout(page)
      expect(refused.scrollWidth).toBeLessThanOrEqual(refused.clientWidth)
      await page.screenshot({ path: join(shots, "consent-375-nothing-ticked.png"), fullPage: true })
      expect(arrivals.length).toBe(before)

      await page.check("input[value='mcp:tools']")
      await page.fill("input[name=api_key]", ALICE_KEY)
      await Promise.all([page.waitForURL((url) => url.pathname === CALLBACK_PATH), page.click("button[value=approve]")])
      expect(await page.textContent("body")).toBe("back at the client")
      const arrived = arrivals.at(-1)
      expect(arrivals.length).toBe(before + 1)
      expect(arrived?.searchParams.get("code")).toMatch(/./)
      expect(arrived?.searchParams.get("state")).toBe("browser-state")
      expect(arrived?.searchParams.get("iss")).toBe(server.url)
    } finally {
      await context.close()
    }
  })
})
