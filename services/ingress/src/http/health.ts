/** The controller's own port (ingress-nginx: 10254): /healthz and Prometheus /metrics. */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { IngressMetrics } from "./metrics.ts";

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

export async function startHealthServer(
  metrics: IngressMetrics,
  port: number,
  address: string,
  healthy: () => boolean,
): Promise<HealthServer> {
  const server = http.createServer(async (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz") {
      const ok = healthy();
      res.writeHead(ok ? 200 : 500, { "content-type": "text/plain; charset=utf-8" });
      res.end(ok ? "ok" : "not ready: informers have not synced");
      return;
    }
    if (path === "/metrics") {
      res.writeHead(200, { "content-type": metrics.registry.contentType });
      res.end(await metrics.registry.metrics());
      return;
    }
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
    res.end("404 page not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, address, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
