import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWith } from "../support/prereq.ts";
import { startApiServer, type TestApiServer } from "../support/apiserver.ts";
import { run, records, status, section } from "../../services/dns/src/testing/harness.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const ns = `dns-e2e-${process.pid}`;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 250));
  }
}

const manifests = `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: ${ns} }
spec:
  selector: { app: web }
  ports:
  - { name: http, port: 80, targetPort: 8080, protocol: TCP }
---
apiVersion: v1
kind: Service
metadata: { name: db, namespace: ${ns} }
spec:
  clusterIP: None
  ports:
  - { name: pg, port: 5432, protocol: TCP }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-manual
  namespace: ${ns}
  labels: { kubernetes.io/service-name: db }
addressType: IPv4
ports:
- { name: pg, port: 5432, protocol: TCP }
endpoints:
- addresses: ["10.244.7.10"]
  hostname: db-0
  conditions: { ready: true }
- addresses: ["10.244.7.11"]
  conditions: { ready: true }
---
apiVersion: v1
kind: Service
metadata: { name: ext, namespace: ${ns} }
spec:
  type: ExternalName
  externalName: www.example.com
`;

describeWith({ tools: ["dig", "kubectl"] }, "klab coredns against klab apiserver (kubeconfig)", () => {
  let api: TestApiServer;
  let child: ChildProcess;
  let port: number;
  let readyPort: number;
  let metricsPort: number;
  const logs: string[] = [];
  const dig = (...args: string[]) =>
    run("dig", ["@127.0.0.1", "-p", String(port), "+time=3", "+tries=1", ...args]);

  beforeAll(async () => {
    api = await startApiServer();
    port = await freePort();
    readyPort = await freePort();
    metricsPort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "klab-coredns-"));
    const corefile = join(dir, "Corefile");
    writeFileSync(
      corefile,
      `. {
    bind 127.0.0.1
    errors
    log
    ready 127.0.0.1:${readyPort}
    prometheus 127.0.0.1:${metricsPort}
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig ${api.kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
}
`,
    );
    child = spawn(
      process.execPath,
      [join(ROOT, "packages/cli/bin/klab.js"), "coredns", "-conf", corefile, "-dns.port", String(port)],
      {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    child.stdout!.on("data", (d: Buffer) => logs.push(...d.toString().split("\n").filter(Boolean)));
    child.stderr!.on("data", (d: Buffer) => logs.push(...d.toString().split("\n").filter(Boolean)));
    await until(
      async () => logs.some((l) => l.includes('"msg":"serving"')) || child.exitCode !== null,
      (v) => v,
      60_000,
    );
    if (child.exitCode !== null) throw new Error(`klab coredns exited: ${logs.join("\n")}`);
    const create = await api.kubectl(["create", "namespace", ns]);
    expect(create.code, create.stderr).toBe(0);
    const apply = await api.kubectl(["apply", "-f", "-"], { input: manifests });
    expect(apply.code, apply.stderr).toBe(0);
  }, 120_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
    await api?.stop();
  });

  it("is ready once its informers synced", async () => {
    const res = await until(
      () =>
        fetch(`http://127.0.0.1:${readyPort}/ready`)
          .then((r) => r.status)
          .catch(() => 0),
      (s) => s === 200,
    );
    expect(res).toBe(200);
  });

  it("a Service created with kubectl resolves to the cluster IP the API server allocated", async () => {
    const ip = (
      await api.kubectl(["get", "svc", "web", "-n", ns, "-o", "jsonpath={.spec.clusterIP}"])
    ).stdout.trim();
    expect(ip).toMatch(/^10\.\d+\.\d+\.\d+$/);
    const out = await until(
      () => dig(`web.${ns}.svc.cluster.local`, "+noall", "+answer"),
      (o) => o.includes(ip),
    );
    expect(records(out)).toEqual([[`web.${ns}.svc.cluster.local.`, "30", "IN", "A", ip]]);
    const srv = await dig(`_http._tcp.web.${ns}.svc.cluster.local`, "SRV");
    expect(section(srv, "ANSWER")).toEqual([
      [
        `_http._tcp.web.${ns}.svc.cluster.local.`,
        "30",
        "IN",
        "SRV",
        "0",
        "100",
        "80",
        `web.${ns}.svc.cluster.local.`,
      ],
    ]);
    expect(records(await dig("-x", ip, "+short")).flat()).toEqual([`web.${ns}.svc.cluster.local.`]);
  });

  it("a headless Service answers its ready endpoints and their hostnames, from EndpointSlices", async () => {
    const out = await until(
      () => dig(`db.${ns}.svc.cluster.local`, "+short"),
      (o) => o.includes("10.244.7.11"),
    );
    expect(records(out).flat().sort()).toEqual(["10.244.7.10", "10.244.7.11"]);
    expect(records(await dig(`db-0.db.${ns}.svc.cluster.local`, "+short")).flat()).toEqual(["10.244.7.10"]);
    expect(records(await dig("-x", "10.244.7.11", "+short")).flat()).toEqual([
      `10-244-7-11.db.${ns}.svc.cluster.local.`,
    ]);
  });

  it("an EndpointSlice change is counted in the DNS programming latency metric", async () => {
    const patch = await api.kubectl([
      "annotate",
      "endpointslice",
      "db-manual",
      "-n",
      ns,
      `endpoints.kubernetes.io/last-change-trigger-time=${new Date().toISOString().replace(/\.\d+Z$/, "Z")}`,
    ]);
    expect(patch.code, patch.stderr).toBe(0);
    const text = await until(
      () => fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text()),
      (t) =>
        /coredns_kubernetes_dns_programming_duration_seconds_count\{service_kind="headless_without_selector"\} [1-9]/.test(
          t,
        ),
    );
    expect(text).toMatch(
      /coredns_kubernetes_dns_programming_duration_seconds_count\{service_kind="headless_without_selector"\} [1-9]/,
    );
  });

  it("an ExternalName Service is a CNAME; NXDOMAIN and NODATA as CoreDNS gives them", async () => {
    const cname = await until(
      () => dig(`ext.${ns}.svc.cluster.local`, "CNAME", "+short"),
      (o) => o.includes("www.example.com"),
    );
    expect(records(cname).flat()).toEqual(["www.example.com."]);
    expect(status(await dig(`nope.${ns}.svc.cluster.local`))).toBe("NXDOMAIN");
    const nodata = await dig(`web.${ns}.svc.cluster.local`, "AAAA");
    expect([status(nodata), section(nodata, "ANSWER").length, section(nodata, "AUTHORITY")[0]?.[3]]).toEqual([
      "NOERROR",
      0,
      "SOA",
    ]);
    expect(records(await dig("dns-version.cluster.local", "TXT", "+short")).flat()).toEqual(['"1.1.0"']);
  });

  it("deleting the Service takes its name away", async () => {
    const del = await api.kubectl(["delete", "svc", "web", "-n", ns]);
    expect(del.code, del.stderr).toBe(0);
    const out = await until(
      () => dig(`web.${ns}.svc.cluster.local`),
      (o) => status(o) === "NXDOMAIN",
    );
    expect(status(out)).toBe("NXDOMAIN");
  });

  it("without kubeconfig it uses the in-cluster service account (KUBERNETES_SERVICE_HOST/PORT)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "klab-coredns-sa-"));
    const sa = join(dir, "serviceaccount");
    mkdirSync(sa);
    writeFileSync(join(sa, "ca.crt"), api.caPem);
    writeFileSync(join(sa, "token"), api.token);
    writeFileSync(join(sa, "namespace"), "kube-system");
    const port2 = await freePort();
    writeFileSync(
      join(dir, "Corefile"),
      `.:${port2} {\n    bind 127.0.0.1\n    kubernetes cluster.local\n}\n`,
    );
    const url = new URL(api.url);
    const inCluster = spawn(
      process.execPath,
      [join(ROOT, "packages/cli/bin/klab.js"), "coredns", "-conf", join(dir, "Corefile")],
      {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"],
        env: {
          ...process.env,
          KUBERNETES_SERVICE_HOST: url.hostname,
          KUBERNETES_SERVICE_PORT: url.port,
          KLAB_SERVICE_ACCOUNT_DIR: sa,
          KUBECONFIG: "",
        },
      },
    );
    const out: string[] = [];
    inCluster.stderr!.on("data", (d: Buffer) => out.push(d.toString()));
    inCluster.stdout!.on("data", (d: Buffer) => out.push(d.toString()));
    try {
      const dig2 = () =>
        run("dig", [
          "@127.0.0.1",
          "-p",
          String(port2),
          "+time=2",
          "+tries=1",
          `db.${ns}.svc.cluster.local`,
          "+short",
        ]);
      const answer = await until(dig2, (o) => o.includes("10.244.7.10"), 60_000);
      expect(records(answer).flat().sort(), out.join("")).toEqual(["10.244.7.10", "10.244.7.11"]);
    } finally {
      inCluster.kill("SIGTERM");
      await new Promise((r) => inCluster.once("exit", r));
    }
  });

  it("SIGTERM stops it cleanly", async () => {
    child.kill("SIGTERM");
    const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
    expect(code).toBe(0);
  });
});
