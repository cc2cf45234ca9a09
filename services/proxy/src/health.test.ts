import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ProxierHealth, ServiceHealthServers } from "./health.ts";
import { buildServicePorts } from "./service-ports.ts";
import { ep, service, slice, tcp } from "./test-fixtures.ts";

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (closers.length) await closers.pop()?.();
});

/** A port that was free a moment ago (health check node ports are fixed numbers, not port 0). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

describe("healthCheckNodePort", () => {
  it("answers 200 with the local endpoint count where the Service has local endpoints, 503 elsewhere", async () => {
    const port = await freePort();
    const svc = service("default", "web", {
      type: "LoadBalancer",
      externalTrafficPolicy: "Local",
      healthCheckNodePort: port,
      clusterIP: "10.96.100.10",
      ports: [tcp("http", 80, { nodePort: 30080 })],
    });
    const eps = slice(
      "default",
      "web",
      [{ name: "http", port: 8080 }],
      [ep("10.244.1.5", "node-1"), ep("10.244.1.6", "node-1"), ep("10.244.2.7", "node-2")],
    );
    const health = new ProxierHealth(60_000);
    health.updated();
    const servers = new ServiceHealthServers("127.0.0.1", () => health.healthy());
    closers.push(() => servers.close());

    await servers.sync(buildServicePorts([svc], [eps], { name: "node-1", ips: [] }));
    const here = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(here.status).toBe(200);
    expect(here.headers.get("x-load-balancing-endpoint-weight")).toBe("2");
    expect(await here.json()).toEqual({
      service: { namespace: "default", name: "web" },
      localEndpoints: 2,
      serviceProxyHealthy: true,
    });

    await servers.sync(buildServicePorts([svc], [eps], { name: "node-3", ips: [] }));
    const elsewhere = await fetch(`http://127.0.0.1:${port}/`);
    expect(elsewhere.status).toBe(503);
    expect(((await elsewhere.json()) as { localEndpoints: number }).localEndpoints).toBe(0);

    await servers.sync([]);
    expect(servers.ports()).toEqual([]);
  });

  it("reports the proxier unhealthy when a queued change waits too long", () => {
    const h = new ProxierHealth(1000);
    expect(h.healthy()).toBe(false);
    h.updated(new Date(0));
    expect(h.healthy(new Date(500))).toBe(true);
    h.queued(new Date(1000));
    expect(h.healthy(new Date(1500))).toBe(true);
    expect(h.healthy(new Date(2500))).toBe(false);
    h.updated(new Date(2600));
    expect(h.healthy(new Date(2700))).toBe(true);
  });
});
