/** Loopback hosts: where plain http is acceptable (development servers, native clients' redirect URIs, RFC 8252 §7.3). */

/** Whether a host name or listen address is this machine only: `localhost`, 127.0.0.0/8, `::1` (bare or bracketed). */
export const isLoopbackHost = (hostname: string): boolean =>
  hostname === "localhost" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname) || hostname === "::1" || hostname === "[::1]"
