/**
 * The SSRF-safe metadata-document fetcher (`NodeClientMetadata`) against a
 * real https server on loopback: what it fetches, and every refusal
 * (addresses that are not public, literal or resolved; redirects; sizes;
 * content types; statuses; time). Refusals of private addresses are decided
 * before any connection: no packet leaves for them (the test's resolver hands
 * out private addresses that nothing here listens on, and the fetcher must
 * refuse them without connecting).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import fc from "fast-check"
import type { LookupAddress } from "node:dns"
import { addressProblem } from "../src/layers/clientMetadata/addresses.ts"
import * as NodeClientMetadata from "../src/layers/clientMetadata/node.ts"
import type { ClientMetadataFetchError } from "../src/services/ClientMetadataDocuments.ts"
import { type Certificate, type DocumentServer, makeCertificate, removeCertificate, startDocumentServer } from "./support/documentServer.ts"

let certificate: Certificate
let server: DocumentServer

beforeAll(async () => {
  certificate = makeCertificate()
  server = await startDocumentServer(certificate)
})
afterAll(async () => {
  await server.close()
  removeCertificate(certificate)
})

/** A resolver for test names; anything else is an error (no real DNS for them). */
const resolver = (table: Record<string, ReadonlyArray<string>>) => (hostname: string): Promise<ReadonlyArray<LookupAddress>> => {
  const addresses = table[hostname]
  return addresses === undefined
    ? Promise.reject(Object.assign(new Error("not found"), { code: "ENOTFOUND" }))
    : Promise.resolve(addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 })))
}

const fetcher = (options: NodeClientMetadata.NodeClientMetadataOptions = {}) =>
  NodeClientMetadata.make({ ca: certificate.cert, ...options })

const fetchWith = (options: NodeClientMetadata.NodeClientMetadataOptions, url: string) =>
  Effect.runPromise(Effect.exit(fetcher(options).fetch(url)))

const reasonOf = (exit: Exit.Exit<unknown, ClientMetadataFetchError>): string =>
  Exit.match(exit, { onSuccess: () => "Success", onFailure: (cause) => cause._tag === "Fail" ? cause.error.reason : cause._tag })

const DOC = { client_id: "x", redirect_uris: ["http://127.0.0.1/cb"] }

describe("which addresses a fetch may reach", () => {
  it("refuses every non-public IPv4 range, and the same addresses written inside IPv6", () => {
    const ranges: ReadonlyArray<readonly [number, number, number, number, number]> = [
      [0, 0, 0, 0, 8], [10, 0, 0, 0, 8], [100, 64, 0, 0, 10], [127, 0, 0, 0, 8], [169, 254, 0, 0, 16], [172, 16, 0, 0, 12],
      [192, 0, 0, 0, 24], [192, 0, 2, 0, 24], [192, 168, 0, 0, 16], [198, 18, 0, 0, 15], [198, 51, 100, 0, 24],
      [203, 0, 113, 0, 24], [224, 0, 0, 0, 4], [240, 0, 0, 0, 4]
    ]
    for (const [a, b, c, d, bits] of ranges) {
      const base = ((a << 24) | (b << 16) | (c << 8) | d) >>> 0
      fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** (32 - bits) - 1 }), (offset) => {
        const n = (base + offset) >>> 0
        const v4 = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".")
        expect(addressProblem(v4)).toBeDefined()
        expect(addressProblem(`::ffff:${v4}`)).toBeDefined()
        expect(addressProblem(`[::ffff:${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}]`)).toBeDefined()
        expect(addressProblem(`64:ff9b::${v4}`)).toBeDefined()
      }), { numRuns: 50 })
    }
  })

  it("refuses IPv6 loopback, unspecified, unique-local, link-local, multicast, documentation, 6to4, Teredo", () => {
    for (
      const address of [
        "::1", "::", "[::1]", "0:0:0:0:0:0:0:1", "fc00::1", "fd12:3456::1", "fe80::1", "febf::1", "fec0::1", "ff02::1",
        "2001:db8::1", "2002:a00:1::1", "2001::1", "100::1", "::127.0.0.1", "fe80::1%eth0", "3fff::1"
      ]
    ) expect(addressProblem(address), address).toBeDefined()
  })

  it("accepts public unicast, and loopback only under the development switch (never other private ranges)", () => {
    for (const address of ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700:4700::1111", "::ffff:8.8.8.8", "[2a00:1450::1]"]) {
      expect(addressProblem(address), address).toBeUndefined()
    }
    for (const address of ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"]) {
      expect(addressProblem(address)).toBeDefined()
      expect(addressProblem(address, { allowLoopback: true })).toBeUndefined()
    }
    for (const address of ["10.0.0.1", "192.168.1.1", "169.254.169.254", "fd00::1", "0.0.0.0", "::"]) {
      expect(addressProblem(address, { allowLoopback: true })).toBeDefined()
    }
    for (const junk of ["", "example.com", "1.2.3", "1.2.3.256", "::g", "1:2:3:4:5:6:7:8:9"]) expect(addressProblem(junk)).toBeDefined()
  })
})

describe("NodeClientMetadata: fetching a document", () => {
  it("fetches JSON with its Cache-Control from an allowed address", async () => {
    server.serveJson("/ok.json", DOC, { "cache-control": "public, max-age=120" })
    const fetched = await Effect.runPromise(fetcher({ allowLoopback: true }).fetch(`${server.origin}/ok.json`))
    expect(fetched).toEqual({ document: DOC, cacheControl: "public, max-age=120" })
  })

  it("connects where its own lookup checked: a name known only to the test's resolver reaches the server", async () => {
    server.serveJson("/named.json", DOC, { "content-type": "application/vnd.example+json; charset=utf-8" })
    const options = { allowLoopback: true, resolve: resolver({ "doc.test": ["127.0.0.1"] }) }
    const fetched = await Effect.runPromise(fetcher(options).fetch(`https://doc.test:${server.port}/named.json`))
    expect(fetched.document).toEqual(DOC)
  })

  it("refuses loopback without the development switch, as a literal or through DNS, before connecting", async () => {
    server.serveJson("/loop.json", DOC)
    const before = server.requests.length
    expect(reasonOf(await fetchWith({}, `${server.origin}/loop.json`))).toBe("Forbidden")
    expect(reasonOf(await fetchWith({}, `https://localhost:${server.port}/loop.json`))).toBe("Forbidden")
    expect(reasonOf(await fetchWith({}, `https://[::ffff:127.0.0.1]:${server.port}/loop.json`))).toBe("Forbidden")
    expect(reasonOf(await fetchWith({ resolve: resolver({ "doc.test": ["127.0.0.1"] }) }, `https://doc.test:${server.port}/loop.json`)))
      .toBe("Forbidden")
    expect(server.requests.length).toBe(before)
  })

  it("refuses private, link-local, unique-local and CGNAT addresses, literal or resolved, even with the switch on", async () => {
    const options = {
      allowLoopback: true,
      resolve: resolver({
        "intranet.test": ["10.1.2.3"],
        "mixed.test": ["127.0.0.1", "192.168.7.7"],
        "v6.test": ["fd00::7"],
        "metadata.test": ["169.254.169.254"],
        "cgnat.test": ["100.64.1.1"]
      })
    }
    for (
      const url of [
        "https://10.0.0.1/doc.json",
        "https://192.168.1.10:8443/doc.json",
        "https://169.254.169.254/latest/meta-data",
        "https://[fd00::1]/doc.json",
        "https://[fe80::1]/doc.json",
        "https://[::ffff:10.0.0.1]/doc.json",
        "https://0.0.0.0/doc.json",
        "https://0x0a000001/doc.json",
        "https://intranet.test/doc.json",
        "https://mixed.test/doc.json",
        "https://v6.test/doc.json",
        "https://metadata.test/doc.json",
        "https://cgnat.test/doc.json"
      ]
    ) expect(reasonOf(await fetchWith(options, url)), url).toBe("Forbidden")
  })

  it("reaches an IPv6 literal host ([::1]) under the switch, and refuses it without", async () => {
    const v6 = await startDocumentServer(certificate, "::1")
    try {
      v6.serveJson("/v6.json", DOC)
      expect(reasonOf(await fetchWith({ allowLoopback: true }, `${v6.origin}/v6.json`))).toBe("Success")
      expect(reasonOf(await fetchWith({}, `${v6.origin}/v6.json`))).toBe("Forbidden")
      expect(v6.requests).toEqual(["/v6.json"])
    } finally {
      await v6.close()
    }
  })

  it("fetches https only", async () => {
    expect(reasonOf(await fetchWith({ allowLoopback: true }, `http://127.0.0.1:${server.port}/ok.json`))).toBe("Forbidden")
    expect(reasonOf(await fetchWith({ allowLoopback: true }, `https://user:pw@127.0.0.1:${server.port}/ok.json`))).toBe("Forbidden")
  })

  it("never follows a redirect", async () => {
    server.serveJson("/target.json", DOC)
    server.route("/moved.json", (_, response) => response.writeHead(302, { location: "/target.json" }).end())
    server.route("/moved-away.json", (_, response) => response.writeHead(307, { location: "https://10.0.0.1/x" }).end())
    const before = server.requests.filter((p) => p === "/target.json").length
    expect(reasonOf(await fetchWith({ allowLoopback: true }, `${server.origin}/moved.json`))).toBe("Redirect")
    expect(reasonOf(await fetchWith({ allowLoopback: true }, `${server.origin}/moved-away.json`))).toBe("Redirect")
    expect(server.requests.filter((p) => p === "/target.json").length).toBe(before)
  })

  it("refuses a document over the size limit: declared, or streamed without a length (aborted while reading)", async () => {
    const big = JSON.stringify({ ...DOC, padding: "x".repeat(10_000) })
    server.serveJson("/declared.json", JSON.parse(big))
    let written = 0
    server.route("/streamed.json", (_, response) => {
      response.writeHead(200, { "content-type": "application/json" })
      // An endless body: the fetcher must stop reading, not wait for the end.
      const timer = setInterval(() => {
        written += 1024
        if (!response.write(" ".repeat(1024)) && written > 1_000_000) clearInterval(timer)
      }, 1)
      response.on("close", () => clearInterval(timer))
    })
    expect(reasonOf(await fetchWith({ allowLoopback: true }, `${server.origin}/declared.json`))).toBe("TooLarge")
    expect(reasonOf(await fetchWith({ allowLoopback: true, timeout: "10 seconds" }, `${server.origin}/streamed.json`))).toBe("TooLarge")
    expect(written).toBeLessThan(1_000_000)
    // The limit is configurable: the same document fits a larger one.
    expect(reasonOf(await fetchWith({ allowLoopback: true, maxBytes: 20_000 }, `${server.origin}/declared.json`))).toBe("Success")
  })

  it("refuses another content type, another status, and a body that is not JSON", async () => {
    server.route("/page.html", (_, response) => response.writeHead(200, { "content-type": "text/html" }).end(JSON.stringify(DOC)))
    server.route("/untyped.json", (_, response) => response.writeHead(200).end(JSON.stringify(DOC)))
    server.route("/broken.json", (_, response) => response.writeHead(200, { "content-type": "application/json" }).end("{not json"))
    server.route("/gone.json", (_, response) => response.writeHead(410, { "content-type": "application/json" }).end("{}"))
    const at = (path: string) => fetchWith({ allowLoopback: true }, `${server.origin}${path}`)
    expect(reasonOf(await at("/page.html"))).toBe("ContentType")
    expect(reasonOf(await at("/untyped.json"))).toBe("ContentType")
    expect(reasonOf(await at("/broken.json"))).toBe("Malformed")
    expect(reasonOf(await at("/gone.json"))).toBe("Status")
    expect(reasonOf(await at("/missing.json"))).toBe("Status")
  })

  it("gives up after the time limit", async () => {
    server.route("/slow.json", (_, response) => {
      response.writeHead(200, { "content-type": "application/json" })
      response.write("{")
    })
    expect(reasonOf(await fetchWith({ allowLoopback: true, timeout: "300 millis" }, `${server.origin}/slow.json`))).toBe("Timeout")
  })

  it("refuses a certificate it does not trust, and a host that does not answer", async () => {
    server.serveJson("/ok.json", DOC)
    const untrusting = NodeClientMetadata.make({ allowLoopback: true })
    const exit = await Effect.runPromise(Effect.exit(untrusting.fetch(`${server.origin}/ok.json`)))
    expect(reasonOf(exit)).toBe("Unreachable")
    const closed = await startDocumentServer(certificate)
    const url = `${closed.origin}/ok.json`
    await closed.close()
    expect(reasonOf(await fetchWith({ allowLoopback: true }, url))).toBe("Unreachable")
  })
})
