/**
 * An HTTP/1.x request head, parsed as nginx reads one: the request line and the header lines out
 * of a buffer, with nginx's limits (large_client_header_buffers 4 8k: a request line over 8k is
 * 414, a header line over 8k or a head over 32k is "400 Request Header Or Cookie Too Large") and
 * its choices (header lines with invalid names, underscores included, are ignored; HTTP/2+ on
 * this port is 505; an HTTP/1.1 request without exactly one Host is 400). Pure: bytes in,
 * a verdict out.
 */
import type { IncomingHttpHeaders } from "node:http";

export const MAX_LINE = 8 * 1024;
export const MAX_HEAD = 4 * MAX_LINE;

export interface RequestHead {
  kind: "head";
  method: string;
  /** the request target as sent (origin form, or absolute form) */
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1 (and any later 1.x) */
  minor: 0 | 1;
  /** lowercase names; repeats joined as Node's IncomingMessage joins them */
  headers: IncomingHttpHeaders;
  /** name, value, name, value… as sent (ignored lines left out) */
  rawHeaders: string[];
  /** bytes of the head, terminating empty line included */
  length: number;
}

export interface InvalidHead {
  kind: "invalid";
  status: 400 | 414 | 501 | 505;
  /** the page title when it differs from "<status> <reason>" (nginx's 494 is sent as 400) */
  title?: string;
  /** why, in the words of nginx's error log */
  reason: string;
  /** the request line as far as it was read, for `$request` in the access log */
  requestLine: string;
}

export type HeadVerdict = RequestHead | InvalidHead | { kind: "incomplete" };

const TOO_LARGE = "400 Request Header Or Cookie Too Large";
/** RFC 9110 token characters, less "_" (nginx's underscores_in_headers off). */
const NAME = /^[!#$%&'*+\-.^`|~0-9A-Za-z]+$/;
const METHOD = /^[A-Z_-]+$/;
const VERSION = /^HTTP\/(\d+)\.(\d+)$/;
/** Control characters and spaces have no place in a target, a header value may hold tabs. */
const BAD_TARGET = /[\x00-\x20\x7f]/;
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const BAD_HOST = /[\s/\\]|^\.|\.\./;
/** Repeats of these keep the first, as Node's IncomingMessage does (requests and responses). */
export const SINGLE_VALUE_HEADERS: ReadonlySet<string> = new Set([
  "content-type",
  "content-length",
  "user-agent",
  "referer",
  "host",
  "authorization",
  "proxy-authorization",
  "if-modified-since",
  "if-unmodified-since",
  "from",
  "location",
  "max-forwards",
  "retry-after",
  "etag",
  "last-modified",
  "server",
  "age",
  "expires",
]);

function invalid(
  status: InvalidHead["status"],
  reason: string,
  requestLine: string,
  title?: string,
): InvalidHead {
  return { kind: "invalid", status, reason, requestLine, title };
}

/** Where the head ends (the index after the empty line), or -1; bare LF line ends count, as in nginx. */
function headEnd(buf: Buffer, from: number): number {
  let i = buf.indexOf(10, from);
  while (i !== -1) {
    const next = i + 1;
    if (next < buf.length && buf[next] === 10) return next + 1;
    if (next + 1 < buf.length && buf[next] === 13 && buf[next + 1] === 10) return next + 2;
    if (next >= buf.length || (next + 1 >= buf.length && buf[next] === 13)) return -1;
    i = buf.indexOf(10, next);
  }
  return -1;
}

/** The limits an incomplete head may already break. */
function checkIncomplete(buf: Buffer, start: number): HeadVerdict {
  const firstLf = buf.indexOf(10, start);
  if (firstLf === -1) {
    if (buf.length - start > MAX_LINE)
      return invalid(414, "client sent too long URI", buf.toString("latin1", start, start + 1024));
    return { kind: "incomplete" };
  }
  const requestLine = buf.toString("latin1", start, firstLf).replace(/\r$/, "");
  if (buf.length - start > MAX_HEAD)
    return invalid(400, "client sent too large request", requestLine, TOO_LARGE);
  const lastLf = buf.lastIndexOf(10);
  if (buf.length - lastLf - 1 > MAX_LINE)
    return invalid(400, "client sent too long header line", requestLine, TOO_LARGE);
  return { kind: "incomplete" };
}

/** The field value without the spaces and tabs around it (String.trim also strips Unicode spaces). */
export function trimOWS(line: string, from: number): string {
  let a = from;
  let b = line.length;
  while (a < b && (line.charCodeAt(a) === 32 || line.charCodeAt(a) === 9)) a++;
  while (b > a && (line.charCodeAt(b - 1) === 32 || line.charCodeAt(b - 1) === 9)) b--;
  return line.slice(a, b);
}

/** Parse the head that starts at `start` in `buf`. */
export function parseRequestHead(buf: Buffer, start = 0): HeadVerdict {
  const end = headEnd(buf, start);
  if (end === -1) return checkIncomplete(buf, start);
  const text = buf.toString("latin1", start, end);
  let lineEnd = text.indexOf("\n");
  const requestLine = text.slice(0, text.charCodeAt(lineEnd - 1) === 13 ? lineEnd - 1 : lineEnd);
  if (requestLine.length > MAX_LINE)
    return invalid(414, "client sent too long URI", requestLine.slice(0, 1024));
  if (end - start > MAX_HEAD) return invalid(400, "client sent too large request", requestLine, TOO_LARGE);

  const sp1 = requestLine.indexOf(" ");
  const sp2 = requestLine.lastIndexOf(" ");
  if (sp1 <= 0 || sp2 === sp1) return invalid(400, "client sent invalid request", requestLine);
  const method = requestLine.slice(0, sp1);
  const target = requestLine.slice(sp1 + 1, sp2);
  const version = VERSION.exec(requestLine.slice(sp2 + 1));
  if (!METHOD.test(method) || !version) return invalid(400, "client sent invalid request", requestLine);
  if (target === "" || BAD_TARGET.test(target) || (target[0] !== "/" && !/^https?:\/\//i.test(target)))
    return invalid(400, "client sent invalid request", requestLine);
  const major = Number(version[1]);
  if (major !== 1) {
    return major > 1
      ? invalid(505, "client sent unsupported HTTP version", requestLine)
      : invalid(400, "client sent invalid request", requestLine);
  }

  const headers: IncomingHttpHeaders = {};
  const rawHeaders: string[] = [];
  let hosts = 0;
  // Line by line up to the empty line that ends the head (headEnd found it).
  for (let pos = lineEnd + 1; ; pos = lineEnd + 1) {
    lineEnd = text.indexOf("\n", pos);
    const line = text.slice(pos, text.charCodeAt(lineEnd - 1) === 13 ? lineEnd - 1 : lineEnd);
    if (line === "") break;
    if (line.length > MAX_LINE)
      return invalid(400, "client sent too long header line", requestLine, TOO_LARGE);
    const colon = line.indexOf(":");
    if (colon <= 0 || line.charCodeAt(0) === 32 || line.charCodeAt(0) === 9)
      return invalid(400, "client sent invalid header line", requestLine);
    const rawName = line.slice(0, colon);
    if (!NAME.test(rawName)) continue;
    const value = trimOWS(line, colon + 1);
    if (BAD_VALUE.test(value)) return invalid(400, "client sent invalid header line", requestLine);
    const name = rawName.toLowerCase();
    rawHeaders.push(rawName, value);
    if (name === "host") {
      if (++hosts > 1) return invalid(400, 'client sent duplicate host header: "Host"', requestLine);
      if (value === "" || BAD_HOST.test(value))
        return invalid(400, "client sent invalid host header", requestLine);
    }
    const prior = headers[name];
    if (prior === undefined) headers[name] = name === "set-cookie" ? [value] : value;
    else if (name === "set-cookie") (prior as string[]).push(value);
    else if (!SINGLE_VALUE_HEADERS.has(name))
      headers[name] = `${prior}${name === "cookie" ? "; " : ", "}${value}`;
  }
  const minor = Number(version[2]) === 0 ? 0 : 1;
  if (minor === 1 && hosts === 0)
    return invalid(400, 'client sent HTTP/1.1 request without "Host" header', requestLine);
  return { kind: "head", method, target, minor, headers, rawHeaders, length: end - start };
}
