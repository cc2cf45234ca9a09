/**
 * httpGet and tcpSocket probes dialled from the agent itself, as kubelet dials them from the node:
 * no process per probe. Failures read as Go's net/http and net errors do in kubelet's events.
 */
import http from "node:http";
import https from "node:https";
import net from "node:net";

/** Go's texts for the errno values a dial meets. */
const GO_ERRNO: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  EHOSTUNREACH: "no route to host",
  ENETUNREACH: "network is unreachable",
  ECONNRESET: "connection reset by peer",
  ETIMEDOUT: "connection timed out",
  EADDRNOTAVAIL: "cannot assign requested address",
};

function hostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

function dialError(err: NodeJS.ErrnoException, host: string, port: number): string {
  const text = err.code ? GO_ERRNO[err.code] : undefined;
  if (err.syscall === "connect" && text) return `dial tcp ${hostPort(host, port)}: connect: ${text}`;
  if (err.code === "ENOTFOUND" || err.code === "EAI_AGAIN") return `dial tcp: lookup ${host}: no such host`;
  if (text) return `read tcp ${hostPort(host, port)}: read: ${text}`;
  return err.message;
}

export interface HTTPDial {
  scheme: "http" | "https";
  host: string;
  port: number;
  path: string;
  headers: Array<{ name: string; value: string }>;
  timeoutMs: number;
}

/** One GET as kubelet's prober sends it; the status code, or why there is none. */
export function dialHTTP(o: HTTPDial): Promise<{ status: number } | { error: string }> {
  // kubelet's defaults, which the probe's own headers replace (Host, User-Agent, Accept …)
  const headers: Record<string, string> = { "User-Agent": "kube-probe/1.32", Accept: "*/*" };
  for (const h of o.headers) {
    for (const k of Object.keys(headers)) if (k.toLowerCase() === h.name.toLowerCase()) delete headers[k];
    headers[h.name] = h.value;
  }
  return new Promise((resolve) => {
    let req: http.ClientRequest;
    try {
      // no keep-alive (kubelet disables it): every probe is a fresh connection, closed after it
      req = (o.scheme === "https" ? https : http).request(
        {
          host: o.host,
          port: o.port,
          path: o.path,
          method: "GET",
          headers,
          agent: false,
          rejectUnauthorized: false,
        },
        (res) => finish({ status: res.statusCode ?? 0 }),
      );
    } catch (err) {
      // a header or path the request cannot carry: the probe fails, the agent goes on
      return resolve({ error: (err as Error).message });
    }
    let done = false;
    const timer = setTimeout(
      () => finish({ error: "context deadline exceeded (Client.Timeout exceeded while awaiting headers)" }),
      o.timeoutMs,
    );
    function finish(v: { status: number } | { error: string }): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve(v);
    }
    req.on("error", (err) => finish({ error: dialError(err, o.host, o.port) }));
    req.end();
  });
}

/** A TCP connection that opens and closes: undefined when it opened, else kubelet's message. */
export function dialTCP(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    let done = false;
    const s = new net.Socket();
    const timer = setTimeout(() => finish(`dial tcp ${hostPort(host, port)}: i/o timeout`), timeoutMs);
    function finish(v: string | undefined): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    }
    s.once("connect", () => finish(undefined));
    s.once("error", (err) => finish(dialError(err, host, port)));
    try {
      s.connect({ host, port });
    } catch (err) {
      finish((err as Error).message);
    }
  });
}
