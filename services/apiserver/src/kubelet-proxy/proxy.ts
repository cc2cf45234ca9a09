import https from "node:https";
import tls from "node:tls";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Node, Pod } from "@klab/api";

/**
 * pods/log, pods/exec, pods/attach and pods/portforward: the API server looks up the pod's node
 * and proxies to that node's kubelet API, as kube-apiserver does. Upgrades (WebSocket exec with
 * v5.channel.k8s.io, port-forward with SPDY/3.1+portforward.k8s.io) are spliced byte for byte
 * after the request line is rewritten, so the kubelet speaks the protocol to the client directly.
 */
export interface KubeletProxyOptions {
  resolvePod(namespace: string, name: string): Promise<Pod | undefined>;
  /** The node's kubelet address: "ip" or "ip:port" (see nodeKubeletAddress). */
  resolveNodeAddress(nodeName: string): Promise<string | undefined>;
  /** Used when resolveNodeAddress gives no port. */
  kubeletPort?: number;
  tls?: {
    /** CA to verify the kubelet's serving certificate; without it the certificate is not verified (kubelets self-sign). */
    ca?: string;
    /** client certificate the kubelet accepts (signed by the cluster CA) */
    cert?: string;
    key?: string;
    /** bearer token the kubelet accepts (the node agents accept the token of their kubeconfig) */
    token?: string;
  };
  /** Auth for upgrade requests, which bypass fastify's onRequest hooks. Return false to answer 401. */
  authorizeUpgrade?(req: IncomingMessage): boolean;
}

/** The address kube-apiserver would dial: InternalIP and status.daemonEndpoints.kubeletEndpoint.Port. */
export function nodeKubeletAddress(node: Node, defaultPort = 10250): string | undefined {
  const ip =
    node.status?.addresses?.find((a) => a.type === "InternalIP")?.address ??
    node.status?.addresses?.[0]?.address;
  if (!ip) return undefined;
  return `${ip}:${node.status?.daemonEndpoints?.kubeletEndpoint?.Port || defaultPort}`;
}

interface StatusBody {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Failure";
  message: string;
  reason: string;
  code: number;
  details?: { name?: string; kind?: string };
}

class ProxyError extends Error {
  constructor(readonly status: StatusBody) {
    super(status.message);
  }
}

function fail(code: number, reason: string, message: string, name?: string): ProxyError {
  return new ProxyError({
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code,
    ...(name ? { details: { name, kind: "pods" } } : {}),
  });
}

const SUBRESOURCE = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(log|exec|attach|portforward)$/;

function splitHostPort(addr: string, dflt: number): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(addr);
  if (m && !m[1].includes(":")) return { host: m[1], port: Number(m[2]) };
  return { host: addr.replace(/^\[|\]$/g, ""), port: dflt };
}

/** Picks the container as kube-apiserver does: the named one, or the only one. */
function pickContainer(pod: Pod, requested: string | null): string {
  const names = (pod.spec?.containers ?? []).map((c) => c.name);
  const name = pod.metadata.name!;
  if (requested) {
    if (!names.includes(requested) && !(pod.spec?.initContainers ?? []).some((c) => c.name === requested))
      throw fail(400, "BadRequest", `container ${requested} is not valid for pod ${name}`);
    return requested;
  }
  if (names.length === 1) return names[0];
  throw fail(
    400,
    "BadRequest",
    `a container name must be specified for pod ${name}, choose one of: [${names.join(" ")}]`,
  );
}

export interface KubeletTarget {
  host: string;
  port: number;
  path: string;
}

/** Maps an API request to the kubelet URL it proxies to; throws a Status for requests kube-apiserver rejects. */
export async function kubeletTarget(opts: KubeletProxyOptions, url: URL): Promise<KubeletTarget> {
  const m = SUBRESOURCE.exec(url.pathname);
  if (!m) throw fail(404, "NotFound", "the server could not find the requested resource");
  let ns: string, name: string, sub: string;
  try {
    [, ns, name, sub] = m.map((x) => decodeURIComponent(x));
  } catch {
    throw fail(400, "BadRequest", `malformed path ${url.pathname}`);
  }
  const pod = await opts.resolvePod(ns, name);
  if (!pod) throw fail(404, "NotFound", `pods "${name}" not found`, name);
  const node = pod.spec?.nodeName;
  if (!node) throw fail(400, "BadRequest", `pod ${name} does not have a host assigned`);
  const addr = await opts.resolveNodeAddress(node);
  if (!addr) throw fail(500, "InternalError", `no kubelet address known for node ${node}`);
  const { host, port } = splitHostPort(addr, opts.kubeletPort ?? 10250);
  const q = url.searchParams;
  const out = new URLSearchParams();
  const enc = encodeURIComponent;
  if (sub === "log") {
    const container = pickContainer(pod, q.get("container"));
    for (const k of ["follow", "previous", "timestamps"]) if (q.get(k) === "true") out.set(k, "true");
    for (const k of ["tailLines", "limitBytes", "sinceSeconds"]) {
      const v = q.get(k);
      if (v === null) continue;
      if (!/^\d+$/.test(v))
        throw fail(400, "BadRequest", `invalid ${k} "${v}": must be a non-negative integer`);
      out.set(k, v);
    }
    const since = q.get("sinceTime");
    if (since) {
      if (Number.isNaN(Date.parse(since))) throw fail(400, "BadRequest", `invalid sinceTime "${since}"`);
      out.set("sinceTime", since);
    }
    const qs = out.toString();
    return {
      host,
      port,
      path: `/containerLogs/${enc(ns)}/${enc(name)}/${enc(container)}${qs ? `?${qs}` : ""}`,
    };
  }
  if (sub === "portforward") {
    for (const p of q.getAll("ports")) out.append("ports", p);
    const qs = out.toString();
    return { host, port, path: `/portForward/${enc(ns)}/${enc(name)}${qs ? `?${qs}` : ""}` };
  }
  const phase = pod.status?.phase;
  if (phase === "Succeeded" || phase === "Failed")
    throw fail(
      400,
      "BadRequest",
      `cannot ${sub} into a container in a completed pod; current phase is ${phase}`,
    );
  const container = pickContainer(pod, q.get("container"));
  if (sub === "exec" && q.getAll("command").length === 0)
    throw fail(400, "BadRequest", "you must specify at least 1 command");
  for (const c of q.getAll("command")) out.append("command", c);
  for (const k of ["stdin", "stdout", "stderr", "tty"])
    if (q.get(k) === "true" || q.get(k) === "1") out.set(k, "true");
  return { host, port, path: `/${sub}/${enc(ns)}/${enc(name)}/${enc(container)}?${out.toString()}` };
}

function authHeader(opts: KubeletProxyOptions): Record<string, string> {
  return opts.tls?.token ? { authorization: `Bearer ${opts.tls.token}` } : {};
}

function tlsOptions(opts: KubeletProxyOptions): tls.ConnectionOptions {
  return { ca: opts.tls?.ca, cert: opts.tls?.cert, key: opts.tls?.key, rejectUnauthorized: !!opts.tls?.ca };
}

function writeStatus(socket: Duplex, s: StatusBody): void {
  const body = JSON.stringify(s);
  socket.end(
    `HTTP/1.1 ${s.code} ${s.reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Splices an upgrade request to the kubelet: rewritten request line and auth, then raw bytes both ways. */
export async function proxyUpgrade(
  opts: KubeletProxyOptions,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): Promise<void> {
  socket.on("error", () => {});
  let target: KubeletTarget;
  try {
    target = await kubeletTarget(opts, new URL(req.url ?? "/", "https://apiserver"));
  } catch (err) {
    if (err instanceof ProxyError) return writeStatus(socket, err.status);
    return writeStatus(socket, fail(500, "InternalError", String(err)).status);
  }
  const upstream = tls.connect({
    host: target.host,
    port: target.port,
    servername: undefined,
    ...tlsOptions(opts),
  });
  upstream.on("error", (e) =>
    writeStatus(socket, fail(502, "ServiceUnavailable", `error dialing backend: ${e.message}`).status),
  );
  upstream.once("secureConnect", () => {
    upstream.removeAllListeners("error");
    upstream.on("error", () => socket.destroy());
    const keep = [
      "upgrade",
      "connection",
      "sec-websocket-key",
      "sec-websocket-version",
      "sec-websocket-protocol",
      "sec-websocket-extensions",
      "x-stream-protocol-version",
      "user-agent",
    ];
    const lines = [`GET ${target.path} HTTP/1.1`, `Host: ${target.host}:${target.port}`];
    for (const k of keep) {
      const v = req.headers[k];
      if (v !== undefined) lines.push(`${k}: ${Array.isArray(v) ? v.join(", ") : v}`);
    }
    for (const [k, v] of Object.entries(authHeader(opts))) lines.push(`${k}: ${v}`);
    upstream.write(lines.join("\r\n") + "\r\n\r\n");
    if (head.length) upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
    socket.on("close", () => upstream.destroy());
    upstream.on("close", () => socket.destroy());
  });
}

async function proxyLog(
  opts: KubeletProxyOptions,
  req: FastifyRequest,
  reply: FastifyReply,
): Promise<unknown> {
  let target: KubeletTarget;
  try {
    target = await kubeletTarget(opts, new URL(req.url, "https://apiserver"));
  } catch (err) {
    const s = err instanceof ProxyError ? err.status : fail(500, "InternalError", String(err)).status;
    return reply.code(s.code).type("application/json").send(JSON.stringify(s));
  }
  return new Promise<unknown>((resolve) => {
    const upstream = https.request(
      {
        host: target.host,
        port: target.port,
        path: target.path,
        method: "GET",
        headers: authHeader(opts),
        ...tlsOptions(opts),
      },
      (res) => {
        reply.code(res.statusCode ?? 502).type(res.headers["content-type"] ?? "text/plain");
        // follow streams: every chunk the kubelet writes reaches kubectl at once
        reply.raw.on("close", () => res.destroy());
        resolve(reply.send(res));
      },
    );
    upstream.on("error", (e) => {
      const s = fail(
        500,
        "InternalError",
        `Get "https://${target.host}:${target.port}${target.path.split("?")[0]}": ${e.message}`,
      ).status;
      resolve(reply.code(s.code).type("application/json").send(JSON.stringify(s)));
    });
    upstream.end();
  });
}

/** The fastify plugin the API server registers. */
export async function kubeletProxyPlugin(app: FastifyInstance, opts: KubeletProxyOptions): Promise<void> {
  app.get("/api/v1/namespaces/:namespace/pods/:name/log", (req, reply) => proxyLog(opts, req, reply));
  const noUpgrade = async (_req: FastifyRequest, reply: FastifyReply) =>
    reply
      .code(400)
      .type("application/json")
      .send(
        JSON.stringify(
          fail(
            400,
            "BadRequest",
            "Upgrade request required: this API server streams exec/attach over WebSocket (v5.channel.k8s.io) and port-forward over WebSocket (SPDY/3.1+portforward.k8s.io); SPDY POST is not supported, unset KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false / KUBECTL_PORT_FORWARD_WEBSOCKETS=false",
          ).status,
        ),
      );
  for (const sub of ["exec", "attach", "portforward"]) {
    app.get(`/api/v1/namespaces/:namespace/pods/:name/${sub}`, noUpgrade);
    app.post(`/api/v1/namespaces/:namespace/pods/:name/${sub}`, noUpgrade);
  }
  app.server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? "").split("?")[0];
    if (!SUBRESOURCE.test(path) || path.endsWith("/log")) return;
    if (opts.authorizeUpgrade && !opts.authorizeUpgrade(req)) {
      socket.on("error", () => {});
      return writeStatus(socket, fail(401, "Unauthorized", "Unauthorized").status);
    }
    void proxyUpgrade(opts, req, socket, head);
  });
}
