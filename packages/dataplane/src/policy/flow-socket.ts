/**
 * The flows socket: how `klab observe` reads a node dataplane's flow events (as Hubble reads
 * Cilium's monitor). A unix stream socket, by default <node state dir>/flows.sock
 * ($KLAB_HOME/<lab>/nodes/<node>/flows.sock). The client sends one JSON request line:
 *   {"last":20,"follow":false,"verdict":"DROPPED","ips":["10.244.1.5"]}
 * and the server answers with one FlowEvent JSON per line: the last `last` matching events,
 * then (with follow) every new one until the client hangs up; without follow it closes.
 * An invalid request gets one {"error":"…"} line.
 */
import { chmodSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { dirname, join } from "node:path";
import type { FlowEvent, FlowLog, Verdict } from "../flows.ts";

export const FLOWS_SOCKET_NAME = "flows.sock";

export function flowsSocketPath(nodeStateDir: string): string {
  return join(nodeStateDir, FLOWS_SOCKET_NAME);
}

export interface FlowsRequest {
  last?: number;
  follow?: boolean;
  verdict?: Verdict;
  /** Events with any of these IPs at either end (before or after NAT). */
  ips?: string[];
  /** Include connection-end events (default: only new connections and drops). */
  ends?: boolean;
}

const VERDICTS = new Set(["FORWARDED", "DROPPED", "REJECTED"]);

/** Checks a request line; returns the request or why it is invalid. */
export function parseFlowsRequest(line: string): FlowsRequest | { error: string } {
  let r: unknown;
  try {
    r = JSON.parse(line);
  } catch {
    return { error: "request is not valid JSON" };
  }
  if (!r || typeof r !== "object" || Array.isArray(r)) return { error: "request must be a JSON object" };
  const q = r as Record<string, unknown>;
  if (q.last !== undefined && (!Number.isInteger(q.last) || (q.last as number) < 0))
    return { error: "last must be a non-negative integer" };
  if (q.verdict !== undefined && !VERDICTS.has(q.verdict as string))
    return { error: `verdict must be FORWARDED, DROPPED or REJECTED` };
  if (q.ips !== undefined && (!Array.isArray(q.ips) || q.ips.some((i) => typeof i !== "string")))
    return { error: "ips must be a list of IP addresses" };
  return {
    last: q.last as number | undefined,
    follow: q.follow === true,
    verdict: q.verdict as Verdict | undefined,
    ips: q.ips as string[] | undefined,
    ends: q.ends === true,
  };
}

export function flowMatches(e: FlowEvent, r: FlowsRequest): boolean {
  if (!r.ends && e.type === "end") return false;
  if (r.verdict && e.verdict !== r.verdict) return false;
  if (r.ips && r.ips.length > 0) {
    const ends = [e.src, e.dst, e.natSrc, e.natDst];
    if (!ends.some((x) => x && r.ips!.includes(x.ip))) return false;
  }
  return true;
}

function serve(flows: FlowLog, sock: Socket): void {
  let buf = "";
  let started = false;
  sock.on("error", () => sock.destroy());
  sock.on("data", (d: Buffer) => {
    if (started) return;
    buf += d.toString("utf8");
    if (buf.length > 64 * 1024) {
      sock.end(JSON.stringify({ error: "request too large" }) + "\n");
      return;
    }
    const nl = buf.indexOf("\n");
    if (nl === -1) return;
    started = true;
    const req = parseFlowsRequest(buf.slice(0, nl));
    if ("error" in req) {
      sock.end(JSON.stringify(req) + "\n");
      return;
    }
    const last = req.last ?? 20;
    const recent: FlowEvent[] = [];
    if (last > 0) {
      for (const e of flows.recent()) if (flowMatches(e, req)) recent.push(e);
    }
    const out = recent.slice(-last).map((e) => JSON.stringify(e) + "\n");
    if (!req.follow) {
      sock.end(out.join(""));
      return;
    }
    if (out.length) sock.write(out.join(""));
    const onFlow = (e: FlowEvent) => {
      // A client that cannot keep up loses events rather than growing the node's memory.
      if (flowMatches(e, req) && sock.writableLength < 4 * 1024 * 1024) sock.write(JSON.stringify(e) + "\n");
    };
    flows.on("flow", onFlow);
    sock.once("close", () => flows.off("flow", onFlow));
  });
}

/** Serves `flows` on `socketPath` (replacing a stale socket file); only root/the owner may connect. */
export async function listenFlows(flows: FlowLog, socketPath: string): Promise<Server> {
  mkdirSync(dirname(socketPath), { recursive: true });
  if (existsSync(socketPath)) rmSync(socketPath);
  const server = createServer((sock) => serve(flows, sock));
  await new Promise<void>((res, rej) => {
    server.once("error", rej);
    server.listen(socketPath, () => res());
  });
  chmodSync(socketPath, 0o600);
  return server;
}

/**
 * Reads flows from a node's socket, calling `onFlow` for each; resolves when the server closes
 * (or `signal` aborts). Rejects with a message saying what to do when the socket is missing.
 */
export function readFlows(
  socketPath: string,
  req: FlowsRequest,
  onFlow: (e: FlowEvent) => void,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((res, rej) => {
    const sock = createConnection(socketPath);
    let buf = "";
    signal?.addEventListener("abort", () => sock.destroy(), { once: true });
    sock.on("connect", () => sock.write(JSON.stringify(req) + "\n"));
    sock.on("data", (d: Buffer) => {
      buf += d.toString("utf8");
      let nl: number;
      while ((nl = buf.indexOf("\n")) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const msg = JSON.parse(line) as FlowEvent | { error: string };
        if ("error" in msg) {
          sock.destroy();
          rej(new Error(`${socketPath}: ${msg.error}`));
          return;
        }
        onFlow(msg);
      }
    });
    sock.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT" || err.code === "ECONNREFUSED")
        rej(new Error(`no node dataplane listens on ${socketPath}: is the lab up? (klab status)`));
      else rej(err);
    });
    sock.on("close", () => res());
  });
}
