/**
 * A local https server for Client ID Metadata Documents, as a client would
 * host one: a self-signed certificate made with `openssl` for this test run
 * (names `localhost`, `doc.test`, `127.0.0.1`, `::1`; trusted by passing it as
 * the fetcher's `ca`, or to a server process as `NODE_EXTRA_CA_CERTS`), and a
 * route table the test fills in. Every request is recorded, so a test can
 * tell that a refused fetch never reached it.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createServer, type Server } from "node:https"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

export interface Certificate {
  readonly key: string
  readonly cert: string
  /** The certificate's file (for `NODE_EXTRA_CA_CERTS`). */
  readonly certFile: string
  readonly dir: string
}

/** A fresh self-signed certificate (ECDSA P-256, 2 days) for this machine's names. */
export const makeCertificate = (): Certificate => {
  const dir = mkdtempSync(join(tmpdir(), "cimd-tls-"))
  const keyFile = join(dir, "key.pem")
  const certFile = join(dir, "cert.pem")
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", keyFile, "-out", certFile, "-days", "2", "-subj", "/CN=cimd test",
    "-addext", "subjectAltName=DNS:localhost,DNS:doc.test,IP:127.0.0.1,IP:::1",
    "-addext", "basicConstraints=critical,CA:TRUE"
  ], { stdio: "ignore" })
  return { key: readFileSync(keyFile, "utf8"), cert: readFileSync(certFile, "utf8"), certFile, dir }
}

export type Route = (request: IncomingMessage, response: ServerResponse) => void

export interface DocumentServer {
  /** `https://127.0.0.1:<port>` */
  readonly origin: string
  readonly port: number
  /** Paths requested so far, in order. */
  readonly requests: Array<string>
  /** Serve `path` with `route` (replacing any earlier route). */
  readonly route: (path: string, route: Route) => void
  /** Serve `document` as JSON at `path`, with extra headers. */
  readonly serveJson: (path: string, document: unknown, headers?: Record<string, string>) => void
  readonly close: () => Promise<void>
}

/** Start the server on 127.0.0.1 (or `::1`) with `certificate`. */
export const startDocumentServer = async (certificate: Certificate, host = "127.0.0.1"): Promise<DocumentServer> => {
  const routes = new Map<string, Route>()
  const requests: Array<string> = []
  const server: Server = createServer({ key: certificate.key, cert: certificate.cert }, (request, response) => {
    const path = request.url ?? "/"
    requests.push(path)
    const route = routes.get(path)
    if (route === undefined) {
      response.writeHead(404, { "content-type": "application/json" }).end("{}")
      return
    }
    route(request, response)
  })
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  const { port } = server.address() as AddressInfo
  return {
    origin: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    port,
    requests,
    route: (path, route) => void routes.set(path, route),
    serveJson: (path, document, headers = {}) =>
      routes.set(path, (_, response) => {
        response.writeHead(200, { "content-type": "application/json", ...headers }).end(JSON.stringify(document))
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

/** Remove a certificate's directory. */
export const removeCertificate = (certificate: Certificate): void => rmSync(certificate.dir, { recursive: true, force: true })
