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
  /** a Date, or `$time_local` already formatted (see timeLocalNow) */
  time: Date | string;
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

let cachedSecond = -1;
let cachedTime = "";

/** `$time_local` of now, formatted once per second as nginx caches its time strings. */
export function timeLocalNow(nowMs = Date.now()): string {
  const second = Math.floor(nowMs / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedTime = timeLocal(new Date(second * 1000));
  }
  return cachedTime;
}

const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** nginx's default log escaping: `"`, `\` and bytes outside printable ASCII as \xHH. */
export function escapeField(s: string): string {
  if (PLAIN.test(s)) return s;
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

const addrOf = (a: UpstreamAttempt): string => a.addr;
const lengthOf = (a: UpstreamAttempt): string => String(a.responseLength ?? 0);
const timeOf = (a: UpstreamAttempt): string => seconds(a.responseTime);
const statusOf = (a: UpstreamAttempt): string => (a.status === undefined ? "-" : String(a.status));

function list(ups: UpstreamAttempt[], f: (a: UpstreamAttempt) => string): string {
  return ups.length === 1 ? f(ups[0]) : ups.length ? ups.map(f).join(", ") : "-";
}

// Helpers stay at module level: tsx names every function created inside another, on each call.
export function formatAccessLog(e: AccessLogEntry): string {
  const ups = e.attempts;
  const time = typeof e.time === "string" ? e.time : timeLocal(e.time);
  return (
    `${e.remoteAddr} - ${orDash(e.remoteUser)} [${time}] "${escapeField(e.request)}" ${e.status} ${e.bodyBytesSent} ` +
    `"${orDash(e.referer)}" "${orDash(e.userAgent)}" ${e.requestLength} ${seconds(e.requestTime)} ` +
    `[${e.upstreamName}] [${e.alternativeUpstreamName ?? ""}] ${list(ups, addrOf)} ${list(ups, lengthOf)} ` +
    `${list(ups, timeOf)} ${list(ups, statusOf)} ${e.requestId}`
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

/** How long a line may wait, and how much may wait, before the batch is written. */
const BATCH_DELAY_MS = 100;
const BATCH_BYTES = 16 * 1024;

export interface BatchedLines {
  write(line: string): void;
  /** write out what waits now (before the process stops) */
  flush(): void;
}

/**
 * Lines leave in batches, as with nginx's `access_log ... buffer=16k flush=100ms`: at most
 * 100 ms or 16 KiB behind. One asynchronous write per request (a thread-pool round trip and a
 * wakeup each) cost the proxy more than formatting the line did.
 */
export function batchedLines(dest: { write(chunk: string): unknown }): BatchedLines {
  let pending = "";
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    clearTimeout(timer);
    timer = undefined;
    if (pending === "") return;
    const out = pending;
    pending = "";
    dest.write(out);
  };
  return {
    write(line: string): void {
      pending += line;
      if (pending.length >= BATCH_BYTES) flush();
      else if (!timer) {
        timer = setTimeout(flush, BATCH_DELAY_MS);
        timer.unref();
      }
    },
    flush,
  };
}
