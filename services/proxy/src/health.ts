import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { ServicePortInfo } from "./service-ports.ts";

// kube-proxy's two kinds of health endpoints: the proxier's own /healthz (port 10256), which
// load balancers and kubelet-style checks read, and one HTTP server per healthCheckNodePort of a
// Service with externalTrafficPolicy Local, which answers 200 only where local endpoints exist.

/** Go's time.Time.String() in UTC: "2026-11-26 16:30:00.123 +0000 UTC". */
export function goTime(d: Date): string {
  return d.toISOString().replace("T", " ").replace("Z", " +0000 UTC");
}

export class ProxierHealth {
  lastUpdated?: Date;
  lastQueued?: Date;
  constructor(private readonly healthTimeoutMs: number) {}

  queued(now = new Date()): void {
    if (!this.lastQueued || (this.lastUpdated && this.lastUpdated >= this.lastQueued)) this.lastQueued = now;
  }
  updated(now = new Date()): void {
    this.lastUpdated = now;
    this.lastQueued = undefined;
  }
  /** Healthy until a queued change has waited longer than the timeout without a sync. */
  healthy(now = new Date()): boolean {
    if (!this.lastUpdated) return false;
    if (this.lastQueued && now.getTime() - this.lastQueued.getTime() > this.healthTimeoutMs) return false;
    return true;
  }
}

function send(res: ServerResponse, code: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(code, {
    "Content-Type": "application/json",
    "X-Content-Type-Options": "nosniff",
    ...headers,
  });
  res.end(body);
}

/** The proxier health server: /healthz and /livez, 200 when syncs keep up, 503 otherwise. */
export function createHealthzServer(health: ProxierHealth, nodeEligible: () => boolean = () => true): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/healthz" && path !== "/livez") return send(res, 404, '{"error":"not found"}');
    const now = new Date();
    const ok = health.healthy(now);
    const body: Record<string, unknown> = {
      lastUpdated: health.lastUpdated ? goTime(health.lastUpdated) : "",
      currentTime: goTime(now),
    };
    if (path === "/healthz") body.nodeEligible = nodeEligible();
    send(res, ok ? 200 : 503, JSON.stringify(body));
  });
}

interface HealthCheckListener {
  server: Server;
  namespace: string;
  name: string;
  localEndpoints: number;
}

/** One HTTP server per healthCheckNodePort, kept in step with the Services at every sync. */
export class ServiceHealthServers {
  private readonly listeners = new Map<number, HealthCheckListener>();

  constructor(
    private readonly host: string,
    private readonly proxyHealthy: () => boolean,
    private readonly onError: (port: number, err: Error) => void = () => {},
  ) {}

  ports(): number[] {
    return [...this.listeners.keys()];
  }

  async sync(servicePorts: ServicePortInfo[]): Promise<void> {
    const wanted = new Map<number, { namespace: string; name: string; localEndpoints: number }>();
    for (const s of servicePorts) {
      if (!s.healthCheckNodePort) continue;
      const local = s.endpoints.filter((e) => e.isLocal && e.ready).length;
      const prev = wanted.get(s.healthCheckNodePort);
      // All ports of one Service share its health check node port; count endpoints once.
      wanted.set(s.healthCheckNodePort, {
        namespace: s.namespace,
        name: s.name,
        localEndpoints: Math.max(prev?.localEndpoints ?? 0, local),
      });
    }
    for (const [port, l] of this.listeners) {
      if (!wanted.has(port)) {
        this.listeners.delete(port);
        await new Promise((r) => l.server.close(r));
      }
    }
    for (const [port, w] of wanted) {
      const existing = this.listeners.get(port);
      if (existing) {
        Object.assign(existing, w);
        continue;
      }
      const entry: HealthCheckListener = {
        ...w,
        server: createServer((req, res) => this.answer(entry, res)),
      };
      this.listeners.set(port, entry);
      await new Promise<void>((resolve) => {
        entry.server.once("error", (err) => {
          this.listeners.delete(port);
          this.onError(port, err);
          resolve();
        });
        entry.server.listen(port, this.host, () => resolve());
      });
    }
  }

  private answer(l: HealthCheckListener, res: ServerResponse): void {
    const healthy = this.proxyHealthy();
    const body = [
      "{",
      '\t"service": {',
      `\t\t"namespace": ${JSON.stringify(l.namespace)},`,
      `\t\t"name": ${JSON.stringify(l.name)}`,
      "\t},",
      `\t"localEndpoints": ${l.localEndpoints},`,
      `\t"serviceProxyHealthy": ${healthy}`,
      "}",
    ].join("\n");
    send(res, l.localEndpoints > 0 && healthy ? 200 : 503, body, {
      "X-Load-Balancing-Endpoint-Weight": String(l.localEndpoints),
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.listeners.values()].map((l) => new Promise((r) => l.server.close(r))));
    this.listeners.clear();
  }
}
