/**
 * The node's conntrack table over a unix socket beside nat.sock and flows.sock, for
 * `klab conntrack -L | -C | -F`: one JSON request per line, one JSON answer per line.
 */
import type { Server } from "node:net";
import { join } from "node:path";
import { listenUnixSocket, requestJsonLine } from "./unix-socket.ts";
import { formatConntrackEntry, protoName, type Conntrack, type ConntrackEntry } from "./conntrack.ts";
import { ipToString } from "./ip.ts";

export const CONNTRACK_SOCKET_NAME = "conntrack.sock";
const MAX_REQUEST_BYTES = 64 * 1024;

export function conntrackSocketPath(nodeStateDir: string): string {
  return join(nodeStateDir, CONNTRACK_SOCKET_NAME);
}

/** conntrack(8)'s filters: -p, -s/--src, -d/--dst, --sport, --dport (of the original tuple). */
export interface ConntrackFilter {
  proto?: string;
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
}

export type ConntrackRequest =
  ({ op: "list" } & ConntrackFilter) | { op: "count" } | ({ op: "flush" } & ConntrackFilter);

export type ConntrackResponse =
  { ok: true; lines?: string[]; count?: number; max?: number } | { ok: false; error: string };

const PROTOS = new Set(["tcp", "udp", "icmp"]);

/** Checks a filter a person typed; returns what is wrong, if anything. */
export function filterError(f: ConntrackFilter): string | undefined {
  if (f.proto !== undefined && !PROTOS.has(f.proto))
    return `protocol "${f.proto}" is not tracked here: use tcp, udp or icmp`;
  for (const [k, v] of [
    ["src", f.src],
    ["dst", f.dst],
  ] as const)
    if (v !== undefined && (typeof v !== "string" || !/^\d{1,3}(\.\d{1,3}){3}$/.test(v)))
      return `--${k} ${JSON.stringify(v)} is not an IPv4 address`;
  for (const [k, v] of [
    ["sport", f.sport],
    ["dport", f.dport],
  ] as const)
    if (v !== undefined && !(Number.isInteger(v) && v >= 0 && v <= 65535))
      return `--${k} ${JSON.stringify(v)} is not a port`;
  return undefined;
}

export function matchesConntrackFilter(e: ConntrackEntry, f: ConntrackFilter): boolean {
  const o = e.original;
  if (f.proto !== undefined && protoName(o.proto) !== f.proto) return false;
  if (f.src !== undefined && ipToString(o.src) !== f.src) return false;
  if (f.dst !== undefined && ipToString(o.dst) !== f.dst) return false;
  if (f.sport !== undefined && o.srcPort !== f.sport) return false;
  if (f.dport !== undefined && o.dstPort !== f.dport) return false;
  return true;
}

export function handleConntrackRequest(ct: Conntrack, req: unknown): ConntrackResponse {
  if (typeof req !== "object" || req === null) return { ok: false, error: "request must be an object" };
  const r = req as ConntrackRequest;
  if (r.op === "count") return { ok: true, count: [...ct.entries()].length, max: ct.max };
  if (r.op !== "list" && r.op !== "flush")
    return { ok: false, error: `unknown op ${JSON.stringify((r as { op?: unknown }).op)}` };
  const err = filterError(r);
  if (err) return { ok: false, error: err };
  if (r.op === "flush") {
    const now = [...ct.entries()].filter((e) => matchesConntrackFilter(e, r));
    for (const e of now) ct.remove(e, "flushed");
    return { ok: true, count: now.length };
  }
  const lines: string[] = [];
  for (const e of ct.entries())
    if (matchesConntrackFilter(e, r)) lines.push(formatConntrackEntry(e, ct.secondsLeft(e)));
  return { ok: true, lines, count: lines.length };
}

/** Listens on `socketPath` (replacing a stale socket file); only root/the owner may connect. */
export function listenConntrack(ct: Conntrack, socketPath: string): Promise<Server> {
  return listenUnixSocket(socketPath, (sock) => {
    let buf = "";
    sock.on("data", (d: Buffer) => {
      buf += d.toString("utf8");
      for (let nl = buf.indexOf("\n"); nl !== -1; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let res: ConntrackResponse;
        try {
          res = handleConntrackRequest(ct, JSON.parse(line));
        } catch {
          res = { ok: false, error: "request is not valid JSON" };
        }
        sock.write(JSON.stringify(res) + "\n");
      }
      if (buf.length > MAX_REQUEST_BYTES) {
        sock.end(
          JSON.stringify({ ok: false, error: `request larger than ${MAX_REQUEST_BYTES} bytes` }) + "\n",
        );
        buf = "";
      }
    });
    sock.on("error", () => sock.destroy());
  });
}

/** Sends one request and waits for its answer. */
export function conntrackRequest(
  socketPath: string,
  req: ConntrackRequest,
  timeoutMs = 30_000,
): Promise<ConntrackResponse> {
  return requestJsonLine<ConntrackResponse>(socketPath, req, timeoutMs);
}
