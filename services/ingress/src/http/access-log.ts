/**
 * ingress-nginx's default log-format-upstream:
 * $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer"
 * "$http_user_agent" $request_length $request_time [$proxy_upstream_name]
 * [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length
 * $upstream_response_time $upstream_status $req_id
 */

export interface UpstreamAttempt {
  addr: string;
  /** response body bytes, or undefined when none came */
  responseLength?: number;
  /** seconds */
  responseTime: number;
  /** undefined when no status came (nginx logs 502/504 for those) */
  status?: number;
}

export interface AccessLogEntry {
  remoteAddr: string;
  remoteUser?: string;
  time: Date;
  /** the request line: `GET /x HTTP/1.1` */
  request: string;
  status: number;
  bodyBytesSent: number;
  referer?: string;
  userAgent?: string;
  requestLength: number;
  /** seconds */
  requestTime: number;
  upstreamName: string;
  alternativeUpstreamName?: string;
  attempts: UpstreamAttempt[];
  requestId: string;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const pad = (n: number, w = 2): string => String(n).padStart(w, "0");

/** `$time_local`: 10/Oct/2025:13:55:36 +0000 in the process's time zone. */
export function timeLocal(d: Date): string {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? "+" : "-";
  const abs = Math.abs(off);
  return (
    `${pad(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ` +
    `${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`
  );
}

/** nginx's default log escaping: `"`, `\` and bytes outside printable ASCII as \xHH. */
export function escapeField(s: string): string {
  let out = "";
  for (const byte of Buffer.from(s, "utf8")) {
    if (byte === 0x22 || byte === 0x5c || byte < 0x20 || byte > 0x7e)
      out += "\\x" + byte.toString(16).toUpperCase().padStart(2, "0");
    else out += String.fromCharCode(byte);
  }
  return out;
}

const seconds = (s: number): string => s.toFixed(3);
const orDash = (s: string | undefined): string => (s === undefined || s === "" ? "-" : escapeField(s));

export function formatAccessLog(e: AccessLogEntry): string {
  const ups = e.attempts;
  const list = (f: (a: UpstreamAttempt) => string): string => (ups.length ? ups.map(f).join(", ") : "-");
  return (
    `${e.remoteAddr} - ${orDash(e.remoteUser)} [${timeLocal(e.time)}] "${escapeField(e.request)}" ${e.status} ${e.bodyBytesSent} ` +
    `"${orDash(e.referer)}" "${orDash(e.userAgent)}" ${e.requestLength} ${seconds(e.requestTime)} ` +
    `[${e.upstreamName}] [${e.alternativeUpstreamName ?? ""}] ${list((a) => a.addr)} ${list((a) => String(a.responseLength ?? 0))} ` +
    `${list((a) => seconds(a.responseTime))} ${list((a) => (a.status === undefined ? "-" : String(a.status)))} ${e.requestId}`
  );
}

/** The regular expression a log shipper would use for this format (tests parse lines with it). */
export const ACCESS_LOG_PATTERN =
  /^(\S+) - (\S+) \[(\d{2}\/\w{3}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)" (\d+) (\d+\.\d{3}) \[([^\]]*)\] \[([^\]]*)\] (.+?) ((?:\d+|-)(?:, (?:\d+|-))*) ((?:\d+\.\d{3}|-)(?:, (?:\d+\.\d{3}|-))*) ((?:\d{3}|-)(?:, (?:\d{3}|-))*) ([0-9a-f]{32}|\S+)$/;

/** `$remote_user` from a Basic Authorization header. */
export function basicUser(authorization: string | undefined): string | undefined {
  if (!authorization?.startsWith("Basic ")) return undefined;
  const decoded = Buffer.from(authorization.slice(6), "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon === -1 ? undefined : decoded.slice(0, colon);
}
