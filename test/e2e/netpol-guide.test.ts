/**
 * The reference guide's four NetworkPolicies (api-allow-frontend, deny-all in production,
 * db-allow-app, api-policy) applied with kubectl and checked with real connections; `klab observe`
 * naming the allowing policy and showing drops; invalid policies refused as kube-apiserver does.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import type { Server } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { EndpointSlice, Service } from "@klab/api";
import { ServiceNat } from "@klab/dataplane/nat/index.ts";
import { listenFlows } from "@klab/dataplane/policy/flow-socket.ts";
import { buildIptablesRuleset, iptablesJumpRules } from "../../services/proxy/src/iptables-rules.ts";
import { describeWith } from "../support/prereq.ts";
import { startNetpolCluster, type NetpolCluster, type PodSpec } from "./netpol-support.ts";

const runFile = promisify(execFile);
const CLI = resolve(import.meta.dirname, "../../packages/cli/bin/klab.js");

const tcp = (port: number) => ({ port, protocol: "TCP" as const });
const specs: PodSpec[] = [
  { namespace: "default", name: "frontend", labels: { app: "frontend" }, node: 0, ports: [tcp(80)] },
  { namespace: "default", name: "api", labels: { app: "api" }, node: 1, ports: [tcp(8080), tcp(9090)] },
  {
    namespace: "default",
    name: "database",
    labels: { app: "database" },
    node: 1,
    ports: [tcp(5432), tcp(5433)],
  },
  { namespace: "default", name: "app", labels: { app: "app" }, node: 0, ports: [tcp(80)] },
  { namespace: "default", name: "other", labels: { app: "other" }, node: 0, ports: [tcp(80)] },
  { namespace: "production", name: "web", labels: { app: "web" }, node: 1, ports: [tcp(80)] },
  { namespace: "production", name: "worker", labels: { app: "worker" }, node: 0, ports: [tcp(80)] },
];

// The guide's YAML, verbatim.
const API_ALLOW_FRONTEND = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: api-allow-frontend
spec:
  podSelector:
    matchLabels:
      app: api
  policyTypes:
  - Ingress
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: frontend
    ports:
    - protocol: TCP
      port: 8080
`;
const DENY_ALL_PRODUCTION = `# Deny all ingress to production namespace
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-all
  namespace: production
spec:
  podSelector: {}
  policyTypes:
  - Ingress
  # No ingress rules = deny all
`;
const DB_ALLOW_APP = `# Allow only database access from app pods
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: db-allow-app
spec:
  podSelector:
    matchLabels:
      app: database
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: app
    ports:
    - protocol: TCP
      port: 5432
`;
const API_POLICY = `# Allow only frontend to access API
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: api-policy
spec:
  podSelector:
    matchLabels:
      app: api
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: frontend
    ports:
    - protocol: TCP
      port: 8080
`;

let cluster: NetpolCluster;
let flowServers: Server[] = [];
let sockDir: string;
const sockets: string[] = [];

async function reachable(from: string, to: string, port: number): Promise<boolean | string> {
  const r = await cluster.probe(from, to, port, "TCP");
  return r.ok ? true : r.error === "timeout" ? false : (r.error ?? "error");
}

async function observe(args: string[]): Promise<string> {
  const sock = sockets.flatMap((s) => ["--socket", s]);
  const { stdout } = await runFile(
    process.execPath,
    [CLI, "observe", ...sock, "--kubeconfig", cluster.api.kubeconfig, ...args],
    { timeout: 30_000 },
  );
  return stdout;
}

describeWith(
  { root: true, tun: true, tools: ["ip", "kubectl"] },
  "the reference guide's NetworkPolicies",
  () => {
    beforeAll(async () => {
      cluster = await startNetpolCluster(specs, "guide");
      sockDir = mkdtempSync(join(tmpdir(), "klabt-np-flows-"));
      for (const [i, node] of cluster.nodes.entries()) {
        const path = join(sockDir, `node-${i + 1}.sock`);
        flowServers.push(await listenFlows(node.flows, path));
        sockets.push(path);
      }
    }, 120_000);
    afterAll(async () => {
      for (const s of flowServers) s.close();
      flowServers = [];
      if (sockDir) rmSync(sockDir, { recursive: true, force: true });
      await cluster?.close();
    }, 60_000);

    it("without any NetworkPolicy every pod reaches every pod", async () => {
      expect(await reachable("default/other", "default/api", 8080)).toBe(true);
      expect(await reachable("default/frontend", "default/database", 5432)).toBe(true);
      expect(await reachable("default/other", "production/web", 80)).toBe(true);
    });

    it("api-allow-frontend: only frontend pods reach api pods, only on 8080; the rest times out", async () => {
      await cluster.apply(API_ALLOW_FRONTEND);
      await cluster.waitForPolicies();
      expect(await reachable("default/frontend", "default/api", 8080)).toBe(true);
      expect(await reachable("default/frontend", "default/api", 9090)).toBe(false);
      expect(await reachable("default/other", "default/api", 8080)).toBe(false);
      expect(await reachable("production/worker", "default/api", 8080)).toBe(false);
      // Pods the policy does not select are untouched.
      expect(await reachable("default/other", "default/frontend", 80)).toBe(true);
    });

    it("through a Service ClusterIP, policy applies to the backend pod and its targetPort", async () => {
      const api = cluster.pods.get("default/api")!;
      const service: Service = {
        apiVersion: "v1",
        kind: "Service",
        metadata: { namespace: "default", name: "api" },
        spec: {
          clusterIP: "10.96.0.80",
          ports: [{ name: "http", port: 80, protocol: "TCP", targetPort: 8080 }],
        },
      };
      const slice: EndpointSlice = {
        apiVersion: "discovery.k8s.io/v1",
        kind: "EndpointSlice",
        metadata: { namespace: "default", name: "api-1", labels: { "kubernetes.io/service-name": "api" } },
        addressType: "IPv4",
        endpoints: [{ addresses: [api.ip], conditions: { ready: true }, nodeName: "node-2" }],
        ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      };
      // kube-proxy's own iptables rules for the Service, loaded into each node's Service NAT.
      for (const [i, node] of cluster.nodes.entries()) {
        const nat = new ServiceNat();
        nat.load({
          mode: "iptables",
          ensureRules: iptablesJumpRules(),
          iptablesRestore: buildIptablesRuleset([service], [slice], `node-${i + 1}`, {
            clusterCIDR: "10.244.0.0/16",
          }).text,
        });
        node.setServiceNat(nat);
      }
      expect((await cluster.probeAddress("default/frontend", "10.96.0.80", 80, "TCP")).ok).toBe(true);
      expect(await cluster.probeAddress("default/other", "10.96.0.80", 80, "TCP")).toMatchObject({
        ok: false,
        error: "timeout",
      });
    });

    it("klab observe names the allowing policy and shows the drops", async () => {
      const all = await observe(["--pod", "default/api", "--last", "100"]);
      const allowed = all
        .split("\n")
        .find((l) => l.includes("default/frontend:") && l.includes("default/api:8080"));
      expect(allowed).toMatch(
        /^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d\.\d{3}: default\/frontend:\d+ \(ID:\d+\) -> default\/api:8080 \(ID:\d+\) policy-verdict:L3-L4 INGRESS ALLOWED by default\/api-allow-frontend \(TCP Flags: SYN\) FORWARDED$/,
      );
      const drops = await observe(["--verdict", "DROPPED", "--pod", "default/api", "--last", "100"]);
      const lines = drops.trim().split("\n");
      expect(lines.length).toBeGreaterThan(0);
      for (const l of lines) expect(l).toContain("DROPPED");
      expect(drops).toMatch(
        /default\/other:\d+ \(ID:\d+\) <> default\/api:8080 \(ID:\d+\) policy-verdict:none INGRESS DENIED \(TCP Flags: SYN\) DROPPED \(Policy denied\)/,
      );
      expect(drops).toContain("default/api:9090");
      expect(drops).not.toContain("FORWARDED");
    });

    it("klab observe -f prints new flows as they happen", async () => {
      const child = spawn(
        process.execPath,
        [
          CLI,
          "observe",
          ...sockets.flatMap((s) => ["--socket", s]),
          "--kubeconfig",
          cluster.api.kubeconfig,
          "-f",
          "--last",
          "0",
          "--pod",
          "default/app",
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      try {
        let out = "";
        child.stdout!.on("data", (d: Buffer) => (out += d));
        // The follower is connected once an earlier flow would have been printed; retry until seen.
        const end = Date.now() + 20_000;
        while (!out.includes("default/app:") && Date.now() < end) {
          await cluster.probe("default/app", "default/frontend", 80, "TCP");
          await new Promise((r) => setTimeout(r, 200));
        }
        expect(out).toMatch(
          /default\/app:\d+ \(ID:\d+\) -> default\/frontend:80 \(ID:\d+\) to-endpoint \(TCP Flags: SYN\) FORWARDED/,
        );
      } finally {
        child.kill("SIGTERM");
      }
    });

    it("klab observe refuses bad flags with a clear message", async () => {
      const bad = await runFile(process.execPath, [
        CLI,
        "observe",
        "--socket",
        sockets[0],
        "--verdict",
        "MAYBE",
      ]).catch((e: { stderr: string; code: number }) => e);
      expect((bad as { stderr: string }).stderr).toContain(
        "--verdict MAYBE: use FORWARDED, DROPPED or REJECTED",
      );
      const pod = await runFile(process.execPath, [
        CLI,
        "observe",
        "--socket",
        sockets[0],
        "--kubeconfig",
        cluster.api.kubeconfig,
        "--pod",
        "default/nope",
      ]).catch((e: { stderr: string }) => e);
      expect((pod as { stderr: string }).stderr).toContain("pod default/nope not found");
    });

    it("deny-all in production: nothing reaches production pods, production still reaches out", async () => {
      const r = await cluster.api.kubectl(["apply", "-f", "-"], { input: DENY_ALL_PRODUCTION });
      expect(r.code, r.stderr).toBe(0);
      await cluster.waitForPolicies();
      expect(await reachable("default/other", "production/web", 80)).toBe(false);
      expect(await reachable("production/worker", "production/web", 80)).toBe(false);
      expect(await reachable("default/frontend", "production/worker", 80)).toBe(false);
      expect(await reachable("production/web", "default/frontend", 80)).toBe(true);
    });

    it("the pod's own node (kubelet probes) still reaches an isolated pod; other nodes' pods do not", async () => {
      expect(await reachable("node/node-1", "production/worker", 80)).toBe(true);
      expect(await reachable("node/node-1", "production/web", 80)).toBe(false);
    });

    it("db-allow-app: only app pods reach the database, only on 5432 (policyTypes defaulted to Ingress)", async () => {
      const r = await cluster.api.kubectl(["apply", "-f", "-"], { input: DB_ALLOW_APP });
      expect(r.code, r.stderr).toBe(0);
      await cluster.waitForPolicies();
      const got = await cluster.api.kubectl([
        "get",
        "networkpolicy",
        "db-allow-app",
        "-o",
        "jsonpath={.spec.policyTypes}",
      ]);
      expect(got.stdout).toBe('["Ingress"]');
      expect(await reachable("default/app", "default/database", 5432)).toBe(true);
      expect(await reachable("default/app", "default/database", 5433)).toBe(false);
      expect(await reachable("default/frontend", "default/database", 5432)).toBe(false);
      expect(await reachable("production/worker", "default/database", 5432)).toBe(false);
      // Egress is not isolated: the database still opens connections.
      expect(await reachable("default/database", "default/other", 80)).toBe(true);
    });

    it("api-policy: the same rule without policyTypes behaves as api-allow-frontend", async () => {
      let r = await cluster.api.kubectl(["delete", "networkpolicy", "api-allow-frontend"]);
      expect(r.code, r.stderr).toBe(0);
      r = await cluster.api.kubectl(["apply", "-f", "-"], { input: API_POLICY });
      expect(r.code, r.stderr).toBe(0);
      await cluster.waitForPolicies();
      expect(await reachable("default/frontend", "default/api", 8080)).toBe(true);
      expect(await reachable("default/frontend", "default/api", 9090)).toBe(false);
      expect(await reachable("default/other", "default/api", 8080)).toBe(false);
      const line = (await observe(["--pod", "default/api", "--last", "100"]))
        .split("\n")
        .filter((l) => l.includes("default/frontend:") && l.includes("FORWARDED"))
        .pop();
      expect(line).toContain("INGRESS ALLOWED by default/api-policy");
    });

    it("the API refuses invalid policies with kube-apiserver's messages", async () => {
      const bad = async (spec: string) => {
        const r = await cluster.api.kubectl(["apply", "-f", "-"], {
          input: `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: bad\nspec:\n${spec}`,
        });
        expect(r.code).not.toBe(0);
        return r.stderr;
      };
      expect(await bad("  podSelector: {}\n  ingress:\n  - from:\n    - {}\n")).toContain(
        "spec.ingress[0].from[0]: Required value: must specify a peer",
      );
      expect(
        await bad(
          "  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0/8}\n      podSelector: {}\n",
        ),
      ).toContain("spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer");
      expect(
        await bad(
          "  podSelector: {}\n  egress:\n  - to:\n    - ipBlock: {cidr: 10.0.0.0/16, except: [10.1.0.0/24]}\n",
        ),
      ).toContain("spec.egress[0].to[0].ipBlock.except[0]");
      expect(
        await bad("  podSelector: {}\n  ingress:\n  - ports:\n    - {port: 81, endPort: 80}\n"),
      ).toContain(
        "spec.ingress[0].ports[0].endPort: Invalid value: 81: must be greater than or equal to `port`",
      );
      expect(await bad("  podSelector: {}\n  ingress:\n  - ports:\n    - {protocol: ICMP}\n")).toContain(
        'spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"',
      );
      expect(await bad("  podSelector: {}\n  policyTypes: [Sideways]\n")).toContain("spec.policyTypes[0]");
    });
  },
);
