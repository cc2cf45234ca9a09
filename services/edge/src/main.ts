/**
 * The edge: what lies outside the cluster. Wires the cloud controller (LoadBalancer addresses,
 * forwarding to NodePorts, podCIDR routes), the host publishing, and the emulated internet.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pino from "pino";
import { Counter, Registry, collectDefaultMetrics } from "prom-client";
import { KubeClient } from "@klab/client";
import { EdgeController, type Publish } from "./controller.ts";
import { Forwarder, type Listen } from "./forwarder.ts";
import { parsePool } from "./pool.ts";
import { createApiServer } from "./internet/api.ts";
import { defaultZone, internetCorefile } from "./internet/dns.ts";

export interface EdgeFlags {
  kubeconfig?: string;
  pool: string;
  interface?: string;
  manageRoutes: boolean;
  /** "LISTEN=namespace/name:port", LISTEN as tcp:HOST:PORT or unix:PATH */
  publish: string[];
  internet: boolean;
  metricsPort: number;
}

export function parsePublish(text: string): Publish {
  const m = /^(tcp:.+:\d+|unix:.+)=([a-z0-9.-]+)\/([a-z0-9.-]+):(\d+)$/.exec(text);
  if (!m) {
    throw new Error(
      `--publish "${text}": use LISTEN=NAMESPACE/SERVICE:PORT, e.g. tcp:0.0.0.0:8080=ingress-nginx/ingress-nginx-controller:80`,
    );
  }
  const listenText = m[1]!;
  let listen: Listen;
  if (listenText.startsWith("unix:")) listen = { path: listenText.slice(5) };
  else {
    const hp = /^tcp:(.+):(\d+)$/.exec(listenText)!;
    listen = { host: hp[1]!, port: Number(hp[2]) };
  }
  return { listen, service: `${m[2]}/${m[3]}`, port: Number(m[4]) };
}

const klabBin = fileURLToPath(new URL("../../../packages/cli/bin/klab.js", import.meta.url));

export async function run(flags: EdgeFlags): Promise<void> {
  const log = pino({ name: "edge" });
  const pool = parsePool(flags.pool);
  const publish = flags.publish.map(parsePublish);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const connections = new Counter({
    name: "klab_edge_connections_total",
    help: "Connections the cloud load balancer accepted, by Service and outcome",
    labelNames: ["service", "outcome"],
    registers: [registry],
  });
  const forwarder = new Forwarder(log, {
    connection: (service, outcome) => connections.inc({ service, outcome }),
  });
  const client = KubeClient.resolve(flags.kubeconfig);
  const controller = new EdgeController(client, forwarder, log, {
    pool,
    interface: flags.interface,
    manageRoutes: flags.manageRoutes,
    publish,
  });

  const children: ChildProcess[] = [];
  const servers: { close(): void }[] = [];
  if (flags.internet) {
    if (!flags.interface)
      throw new Error("--internet needs --interface: the emulated internet's addresses live on it");
    for (const ip of ["203.0.113.10", defaultZone.bind]) {
      execFileSync("ip", ["addr", "replace", `${ip}/32`, "dev", flags.interface]);
    }
    const api = createApiServer();
    await new Promise<void>((resolve) => api.listen(80, "203.0.113.10", resolve));
    servers.push(api);
    const dir = mkdtempSync(join(tmpdir(), "klab-internet-"));
    writeFileSync(join(dir, "Corefile"), internetCorefile(defaultZone));
    const dns = spawn(process.execPath, [klabBin, "coredns", "-conf", join(dir, "Corefile")], {
      stdio: "inherit",
    });
    children.push(dns);
    log.info({ api: "203.0.113.10:80", dns: `${defaultZone.bind}:53` }, "emulated internet up");
  }

  const metrics = createServer(async (req, res) => {
    if (req.url === "/healthz") {
      res.end("ok");
      return;
    }
    res.setHeader("content-type", registry.contentType);
    res.end(await registry.metrics());
  });
  await new Promise<void>((resolve) => metrics.listen(flags.metricsPort, "0.0.0.0", resolve));
  servers.push(metrics);

  await controller.start();
  log.info({ pool: flags.pool, publish: flags.publish }, "edge running");

  const stop = async () => {
    controller.stop();
    await forwarder.close();
    for (const s of servers) s.close();
    for (const c of children) c.kill("SIGTERM");
    await client.close();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop());
  process.once("SIGINT", () => void stop());
}
