/**
 * The edge against the real API server: a LoadBalancer Service gets an address from the pool in
 * its status, and a published endpoint forwards connections to the nodes' NodePort.
 */
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer, type AddressInfo } from "node:net";
import pino from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { KubeClient } from "@klab/client";
import type { Service } from "@klab/api";
import { describeWith } from "../../../test/support/prereq.ts";
import { startApiServer, type TestApiServer } from "../../../test/support/apiserver.ts";
import { EdgeController } from "./controller.ts";
import { Forwarder } from "./forwarder.ts";
import { parsePool } from "./pool.ts";

async function freePort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

async function until<T>(probe: () => Promise<T | undefined>, what: string, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describeWith({ tools: ["kubectl"] }, "edge (cloud load balancer) with the real API server", () => {
  let api: TestApiServer;
  let client: KubeClient;
  let controller: EdgeController;
  let forwarder: Forwarder;
  let nodeServer: Server;
  let publishPort: number;
  const nodePort = 30000 + Math.floor(Math.random() * 2700);

  beforeAll(async () => {
    api = await startApiServer();
    client = KubeClient.fromKubeconfig(api.kubeconfig);
    // The "node": its NodePort answers with its name.
    nodeServer = createServer((_req, res) => res.end("node-a answered"));
    await new Promise<void>((r) => nodeServer.listen(nodePort, "127.0.0.1", r));
    const node = {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "node-a" },
      spec: {},
    };
    await client.create(node as never);
    await client.patch(
      "v1",
      "nodes",
      undefined,
      "node-a",
      {
        status: {
          addresses: [{ type: "InternalIP", address: "127.0.0.1" }],
          conditions: [
            {
              type: "Ready",
              status: "True",
              reason: "KubeletReady",
              message: "kubelet is posting ready status",
            },
          ],
        },
      },
      "merge",
      "status",
    );
    publishPort = await freePort();
    const log = pino({ level: "silent" });
    forwarder = new Forwarder(
      log,
      { connection: () => undefined },
      { checkIntervalMs: 200, checkTimeoutMs: 200 },
    );
    controller = new EdgeController(client, forwarder, log, {
      pool: parsePool("172.29.255.200-172.29.255.201"),
      manageRoutes: false,
      publish: [{ listen: { host: "127.0.0.1", port: publishPort }, service: "default/web-lb", port: 80 }],
    });
    await controller.start();
  });

  afterAll(async () => {
    controller?.stop();
    await forwarder?.close();
    nodeServer?.close();
    await client?.close();
    await api?.stop();
  });

  it("writes the pool address to the Service's status and forwards the published port to the NodePort", async () => {
    const manifest = `apiVersion: v1
kind: Service
metadata: {name: web-lb, namespace: default}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: ${nodePort}}]
`;
    const applied = await api.kubectl(["apply", "-f", "-"], { input: manifest });
    expect(applied.stderr).toBe("");
    const ip = await until(async () => {
      const s = await client.get<Service>("v1", "services", "default", "web-lb");
      return s?.status?.loadBalancer?.ingress?.[0]?.ip;
    }, "a LoadBalancer address");
    expect(ip).toBe("172.29.255.200");
    const wide = await api.kubectl(["get", "svc", "web-lb"]);
    expect(wide.stdout).toContain("172.29.255.200");

    const body = await until(async () => {
      const res = await fetch(`http://127.0.0.1:${publishPort}/`);
      return res.ok ? await res.text() : undefined;
    }, "the published port to forward");
    expect(body).toBe("node-a answered");
  });

  it("gives the address back when the Service stops being a LoadBalancer", async () => {
    const patched = await api.kubectl([
      "patch",
      "svc",
      "web-lb",
      "--type",
      "merge",
      "-p",
      '{"spec":{"type":"ClusterIP","externalTrafficPolicy":null,"allocateLoadBalancerNodePorts":null,"ports":[{"port":80,"targetPort":8080}]}}',
    ]);
    expect(patched.stderr).toBe("");
    await until(async () => {
      const s = await client.get<Service>("v1", "services", "default", "web-lb");
      return s?.status?.loadBalancer?.ingress?.length ? undefined : true;
    }, "the address to be released");
  });
});
