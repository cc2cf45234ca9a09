/** nginx's reason phrases and built-in status pages, as ingress-nginx (server_tokens off) sends them. */

export const REASONS: Readonly<Record<number, string>> = {
  200: "OK",
  301: "Moved Permanently",
  302: "Moved Temporarily",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Not Allowed",
  408: "Request Time-out",
  413: "Request Entity Too Large",
  414: "Request-URI Too Large",
  429: "Too Many Requests",
  494: "Request Header Or Cookie Too Large",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Temporarily Unavailable",
  504: "Gateway Time-out",
  501: "Not Implemented",
  505: "HTTP Version Not Supported",
};

export function reason(status: number): string {
  return REASONS[status] ?? "Unknown";
}

/** The HTML body nginx sends for a status. `title` overrides the heading (494 is sent as 400). */
export function statusPage(status: number, title?: string): string {
  const heading = title ?? `${status} ${reason(status)}`;
  return (
    `<html>\r\n<head><title>${heading}</title></head>\r\n<body>\r\n<center><h1>${heading}</h1></center>\r\n` +
    `<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`
  );
}

/** A whole HTTP/1.1 error response for a raw socket (bad requests, failed upgrades). */
export function rawResponse(status: number, title?: string, extraHeaders: string[] = []): string {
  const body = statusPage(status, title);
  return (
    `HTTP/1.1 ${status} ${reason(status)}\r\nDate: ${new Date().toUTCString()}\r\nContent-Type: text/html\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n${extraHeaders.map((h) => h + "\r\n").join("")}Connection: close\r\n\r\n${body}`
  );
}
