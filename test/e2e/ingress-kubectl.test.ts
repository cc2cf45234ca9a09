import { afterAll, beforeAll, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { describeWith } from "../support/prereq.ts";
import { startApiServer, type TestApiServer } from "../support/apiserver.ts";
import { curl } from "./ingress-support.ts";
import { startUpstream, type Upstream } from "../../services/ingress/src/harness.ts";

const CLI = resolve(import.meta.dirname, "../../packages/cli/bin/klab.js");

function manifests(web: Upstream, api: Upstream): string {
  const backend = (name: string, u: Upstream) => `
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: default}
spec:
  ports: [{name: http, port: 80, targetPort: ${u.port}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${name}-manual
  namespace: default
  labels: {kubernetes.io/service-name: ${name}, endpointslice.kubernetes.io/managed-by: klab-test}
addressType: IPv4
ports: [{name: http, port: ${u.port}, protocol: TCP}]
endpoints: [{addresses: ["${u.ip}"], conditions: {ready: true}}]
`;
  return `
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: nginx
  annotations: {ingressclass.kubernetes.io/is-default-class: "true"}
spec: {controller: k8s.io/ingress-nginx}
---
apiVersion: v1
kind: Namespace
metadata: {name: ingress-nginx}
---
apiVersion: v1
kind: Service
metadata: {name: ingress-nginx-controller, namespace: ingress-nginx}
spec:
  type: LoadBalancer
  ports: [{name: http, port: 80}, {name: https, port: 443}]
---
${backend("web-service", web)}
---
${backend("api-service", api)}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web-ingress, namespace: default}
spec:
  ingressClassName: nginx
  rules:
  - host: myapp.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web-service, port: {number: 80}}}}
`;
}

describeWith(
  { tools: ["kubectl", "curl"] },
  "ingress controller against the API server, driven by kubectl",
  () => {
    let api: TestApiServer;
    let web: Upstream;
    let apiUp: Upstream;
    let ctl: ChildProcess;
    let httpPort = 0;
    let stderr = "";

    beforeAll(async () => {
      web = await startUpstream("web");
      apiUp = await startUpstream("api");
      api = await startApiServer();
      const applied = await api.kubectl(["apply", "-f", "-"], { input: manifests(web, apiUp) });
      expect(applied.code, applied.stderr).toBe(0);
      ctl = spawn(
        process.execPath,
        [
          CLI,
          "ingress",
          "--kubeconfig",
          api.kubeconfig,
          "--http-port",
          "0",
          "--https-port",
          "0",
          "--healthz-port",
          "0",
          "--bind",
          "127.0.0.1",
        ],
        {
          stdio: ["ignore", "ignore", "pipe"],
        },
      );
      // Never leave the controller behind, even when this test process dies early.
      process.once("exit", () => ctl.kill("SIGKILL"));
      httpPort = await new Promise<number>((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`controller did not start:\n${stderr}`)), 120_000);
        ctl.stderr!.on("data", (d: Buffer) => {
          stderr += d.toString();
          for (const line of stderr.split("\n")) {
            if (!line.includes('"ingress controller listening"')) continue;
            clearTimeout(timer);
            res((JSON.parse(line) as { http: number }).http);
          }
        });
        ctl.once("exit", (code) => rej(new Error(`controller exited with ${code}:\n${stderr}`)));
      });
    }, 240_000);

    afterAll(async () => {
      if (ctl && ctl.exitCode === null) {
        ctl.kill("SIGTERM");
        await new Promise((r) => ctl.once("exit", r));
      }
      await api?.stop();
      await web?.close();
      await apiUp?.close();
    });

    const until = async <T>(f: () => Promise<T>, ok: (v: T) => boolean, what: string): Promise<T> => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const v = await f();
        if (ok(v)) return v;
        if (Date.now() > deadline)
          throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    const get = (path: string) =>
      curl(["--resolve", `myapp.com:${httpPort}:127.0.0.1`, `http://myapp.com:${httpPort}${path}`]);

    it("routes what kubectl applied, follows changes, and writes the load balancer address into status", async () => {
      const first = await get("/api/users");
      expect(first.status).toBe(200);
      expect(JSON.parse(first.body).upstream).toBe("web");

      const patch = JSON.stringify([
        {
          op: "add",
          path: "/spec/rules/0/http/paths/-",
          value: {
            path: "/api",
            pathType: "Prefix",
            backend: { service: { name: "api-service", port: { number: 80 } } },
          },
        },
      ]);
      const patched = await api.kubectl(["patch", "ingress", "web-ingress", "--type=json", "-p", patch]);
      expect(patched.code, patched.stderr).toBe(0);
      await until(
        () => get("/api/users"),
        (r) => r.status === 200 && JSON.parse(r.body).upstream === "api",
        "the /api path to reach api-service",
      );

      const lb = await api.kubectl([
        "patch",
        "service",
        "ingress-nginx-controller",
        "-n",
        "ingress-nginx",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"loadBalancer":{"ingress":[{"ip":"172.29.255.200"}]}}}',
      ]);
      expect(lb.code, lb.stderr).toBe(0);
      await until(
        async () =>
          (
            await api.kubectl([
              "get",
              "ingress",
              "web-ingress",
              "-o",
              "jsonpath={.status.loadBalancer.ingress[*].ip}",
            ])
          ).stdout,
        (s) => s === "172.29.255.200",
        "Ingress status to carry the LoadBalancer IP",
      );
      const table = await api.kubectl(["get", "ingress", "web-ingress"]);
      expect(table.stdout).toMatch(/web-ingress\s+nginx\s+myapp.com\s+172.29.255.200\s+80\s/);

      const deleted = await api.kubectl(["delete", "ingress", "web-ingress"]);
      expect(deleted.code, deleted.stderr).toBe(0);
      await until(
        () => get("/"),
        (r) => r.status === 404,
        "the deleted Ingress to stop routing",
      );
    });
  },
);
