import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import type { Socket } from "node:net";
import { closeSync, openSync, readSync, statSync, existsSync, readFileSync } from "node:fs";
import { WebSocketServer, type WebSocket } from "ws";
import type { Logger } from "pino";
import type { Kubelet } from "../runtime/kubelet.ts";
import type { PodWorker } from "../runtime/pod-worker.ts";
import { EXEC_PROTOCOLS, negotiate } from "./channels.ts";
import { serveExec } from "./exec.ts";
import { renderLines, splitRecords, tail, type LogOptions } from "./logs.ts";
import { parsePorts, serveChannelPortForward } from "./portforward.ts";
import { dialPod } from "./dial.ts";
import { failure, type StatusBody } from "./status.ts";
import { serveSpdyPortForward, SPDY_PORTFORWARD_PROTOCOL } from "./spdy-portforward.ts";

export interface KubeletServerOptions {
  kubelet: Kubelet;
  log: Logger;
  cert: string;
  key: string;
  /** bearer tokens allowed to use the API (the cluster's tokens the API server presents) */
  tokens: string[];
  /** CA whose client certificates are allowed */
  clientCA?: string;
  /** Prometheus text for /metrics */
  metrics?: () => Promise<string>;
}

const PORTFORWARD_PROTOCOLS = ["portforward.k8s.io", "v4.channel.k8s.io"];

function sendStatus(res: ServerResponse, s: StatusBody): void {
  res.writeHead(s.code ?? 500, { "Content-Type": "application/json" });
  res.end(JSON.stringify(s));
}

function rejectUpgrade(socket: Socket, s: StatusBody): void {
  const body = JSON.stringify(s);
  socket.end(
    `HTTP/1.1 ${s.code} ${s.reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** The kubelet API on :10250: containerLogs, exec, portForward, healthz, pods. */
export function createKubeletServer(o: KubeletServerOptions): https.Server {
  // Subprotocols are negotiated here, not by ws: "SPDY/3.1+portforward.k8s.io" has a '/', which
  // ws's token parser refuses, so the header is taken off the request and set on the answer.
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const chosen = new WeakMap<IncomingMessage, string>();
  wss.on("headers", (headers, req) => {
    const p = chosen.get(req);
    if (p) headers.push(`Sec-WebSocket-Protocol: ${p}`);
  });
  const accept = (
    req: IncomingMessage,
    socket: Socket,
    head: Buffer,
    protocol: string,
    serve: (ws: WebSocket) => void,
  ) => {
    delete req.headers["sec-websocket-protocol"];
    chosen.set(req, protocol);
    wss.handleUpgrade(req, socket, head, serve);
  };

  const authorized = (req: IncomingMessage): boolean => {
    const auth = req.headers.authorization ?? "";
    if (auth.startsWith("Bearer ") && o.tokens.includes(auth.slice(7).trim())) return true;
    const sock = req.socket as TLSSocket;
    return !!o.clientCA && sock.authorized === true;
  };

  const route = (url: URL): { kind: string; ns: string; pod: string; container?: string } | undefined => {
    let parts: string[];
    try {
      parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    } catch {
      return undefined;
    }
    const [kind, ns, pod] = parts;
    if (!ns || !pod) return undefined;
    if (kind === "containerLogs" && parts.length === 4) return { kind, ns, pod, container: parts[3] };
    if ((kind === "exec" || kind === "attach") && (parts.length === 4 || parts.length === 5))
      return { kind, ns, pod, container: parts[parts.length - 1] };
    if (kind === "portForward" && (parts.length === 3 || parts.length === 4)) return { kind, ns, pod };
    return undefined;
  };

  const findPod = (ns: string, name: string): PodWorker | StatusBody => {
    const w = o.kubelet.find(ns, name);
    return w ?? failure(404, "NotFound", `pod "${name}" not found on this node`);
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "https://kubelet");
    } catch {
      return sendStatus(res, failure(400, "BadRequest", "malformed request URL"));
    }
    if (url.pathname === "/healthz") {
      res.writeHead(200, { "Content-Type": "text/plain" });
      return res.end("ok");
    }
    if (!authorized(req)) return sendStatus(res, failure(401, "Unauthorized", "Unauthorized"));
    if (url.pathname === "/metrics" && o.metrics) {
      o.metrics().then(
        (text) => {
          res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4" });
          res.end(text);
        },
        () => sendStatus(res, failure(500, "InternalError", "metrics unavailable")),
      );
      return;
    }
    if (url.pathname === "/pods" || url.pathname === "/pods/") {
      res.writeHead(200, { "Content-Type": "application/json" });
      return res.end(
        JSON.stringify({
          kind: "PodList",
          apiVersion: "v1",
          metadata: {},
          items: o.kubelet.pods.map((w) => ({ ...w.currentPod, status: w.computeStatus() })),
        }),
      );
    }
    const r = route(url);
    if (!r) return sendStatus(res, failure(404, "NotFound", `no such kubelet endpoint ${url.pathname}`));
    if (r.kind !== "containerLogs")
      return sendStatus(
        res,
        failure(
          400,
          "BadRequest",
          `${r.kind} needs a WebSocket upgrade (Sec-WebSocket-Protocol: ${r.kind === "portForward" ? SPDY_PORTFORWARD_PROTOCOL : "v5.channel.k8s.io"})`,
        ),
      );
    const w = findPod(r.ns, r.pod);
    if (!("currentPod" in w)) return sendStatus(res, w);
    serveLogs(w, r.container!, url.searchParams, req, res);
  };

  const server = https.createServer(
    { cert: o.cert, key: o.key, ca: o.clientCA, requestCert: !!o.clientCA, rejectUnauthorized: false },
    onRequest,
  );

  server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on("error", () => {});
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "https://kubelet");
    } catch {
      return rejectUpgrade(socket, failure(400, "BadRequest", "malformed request URL"));
    }
    if (!authorized(req)) return rejectUpgrade(socket, failure(401, "Unauthorized", "Unauthorized"));
    const r = route(url);
    if (!r)
      return rejectUpgrade(socket, failure(404, "NotFound", `no such kubelet endpoint ${url.pathname}`));
    const w = findPod(r.ns, r.pod);
    if (!("currentPod" in w)) return rejectUpgrade(socket, w);
    const offered = req.headers["sec-websocket-protocol"] as string | undefined;
    if (r.kind === "exec") {
      const protocol = negotiate(offered, EXEC_PROTOCOLS);
      if (!protocol)
        return rejectUpgrade(
          socket,
          failure(
            400,
            "BadRequest",
            `unsupported streaming protocol ${JSON.stringify(offered ?? "")}; this kubelet speaks ${EXEC_PROTOCOLS.join(", ")}`,
          ),
        );
      const q = url.searchParams;
      const argv = q.getAll("command");
      if (!argv.length)
        return rejectUpgrade(socket, failure(400, "BadRequest", "you must specify at least 1 command"));
      const entry = w.containerEntry(r.container!);
      if (!entry)
        return rejectUpgrade(
          socket,
          failure(400, "BadRequest", `container ${r.container} is not running in pod ${r.ns}/${r.pod}`),
        );
      const flag = (n: string) => q.get(n) === "true" || q.get(n) === "1";
      accept(req, socket, head, protocol, (ws: WebSocket) => {
        o.log.info(
          { pod: `${r.ns}/${r.pod}`, container: r.container, command: argv, tty: flag("tty") },
          "exec",
        );
        serveExec(ws, protocol, {
          argv,
          stdin: flag("stdin"),
          stdout: flag("stdout") || !q.has("stdout"),
          stderr: flag("stderr"),
          tty: flag("tty"),
          enter: entry.enter,
          env: entry.env,
        });
      });
      return;
    }
    if (r.kind === "portForward") {
      const enterNet = w.netEnter();
      if (!enterNet)
        return rejectUpgrade(
          socket,
          failure(400, "BadRequest", `pod ${r.ns}/${r.pod} has no running sandbox`),
        );
      const dial = (port: number) => dialPod(enterNet, port);
      if (negotiate(offered, [SPDY_PORTFORWARD_PROTOCOL])) {
        accept(req, socket, head, SPDY_PORTFORWARD_PROTOCOL, (ws: WebSocket) =>
          serveSpdyPortForward(ws, dial, o.log),
        );
        return;
      }
      const protocol = negotiate(offered, PORTFORWARD_PROTOCOLS);
      if (!protocol)
        return rejectUpgrade(
          socket,
          failure(400, "BadRequest", `unsupported port-forward protocol ${JSON.stringify(offered ?? "")}`),
        );
      const ports = parsePorts(url.searchParams);
      if (typeof ports === "string") return rejectUpgrade(socket, failure(400, "BadRequest", ports));
      accept(req, socket, head, protocol, (ws: WebSocket) => serveChannelPortForward(ws, ports, dial));
      return;
    }
    rejectUpgrade(
      socket,
      failure(
        400,
        "BadRequest",
        `${r.kind} is not supported by klab's kubelet (containers have no attachable stdin)`,
      ),
    );
  });
  server.on("clientError", (_e, socket) => socket.destroy());
  return server;
}

function serveLogs(
  w: PodWorker,
  container: string,
  q: URLSearchParams,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const spec = w.currentPod.spec?.containers?.find((c) => c.name === container);
  if (!spec)
    return sendStatus(
      res,
      failure(400, "BadRequest", `container ${container} is not valid for pod ${w.currentPod.metadata.name}`),
    );
  const previous = q.get("previous") === "true";
  const file = w.logFile(container, previous);
  if (!file || !existsSync(file)) {
    const msg = previous
      ? `previous terminated container "${container}" in pod "${w.currentPod.metadata.name}" not found`
      : `container "${container}" in pod "${w.currentPod.metadata.name}" is waiting to start: ${w.waitingReason(container) ?? "ContainerCreating"}`;
    return sendStatus(res, failure(400, "BadRequest", msg));
  }
  const num = (n: string) => (q.has(n) && /^-?\d+$/.test(q.get(n)!) ? Number(q.get(n)) : undefined);
  const sinceSeconds = num("sinceSeconds");
  const sinceTimeRaw = q.get("sinceTime");
  const o: LogOptions = {
    timestamps: q.get("timestamps") === "true",
    tailLines: num("tailLines"),
    limitBytes: num("limitBytes"),
    sinceTime:
      sinceSeconds !== undefined
        ? Date.now() - sinceSeconds * 1000
        : sinceTimeRaw
          ? Date.parse(sinceTimeRaw)
          : undefined,
  };
  const follow = q.get("follow") === "true" && !previous;
  res.writeHead(200, { "Content-Type": "text/plain" });
  let sent = 0;
  const write = (text: string): boolean => {
    if (o.limitBytes !== undefined) {
      const room = o.limitBytes - sent;
      if (room <= 0) return false;
      if (Buffer.byteLength(text) > room) text = Buffer.from(text).subarray(0, room).toString();
    }
    sent += Buffer.byteLength(text);
    res.write(text);
    return o.limitBytes === undefined || sent < o.limitBytes;
  };
  const text = readFileSync(file, "utf8");
  const first = splitRecords(text);
  let offset = Buffer.byteLength(text) - Buffer.byteLength(first.rest);
  if (!write(renderLines(tail(first.lines, o.tailLines), o)) || !follow) return void res.end();
  let rest = "";
  const poll = setInterval(() => {
    let size = 0;
    try {
      size = statSync(file).size;
    } catch {
      size = 0;
    }
    if (size > offset) {
      const fd = openSync(file, "r");
      const buf = Buffer.alloc(size - offset);
      readSync(fd, buf, 0, buf.length, offset);
      closeSync(fd);
      offset = size;
      const chunk = splitRecords(rest + buf.toString("utf8"));
      rest = chunk.rest;
      if (!write(renderLines(chunk.lines, o))) return stop();
    }
    // a follow ends when the container does
    if (!w.containerRunning(container) || w.logFile(container, false) !== file) stop();
  }, 200);
  const stop = () => {
    clearInterval(poll);
    res.end();
  };
  req.on("close", () => clearInterval(poll));
}
