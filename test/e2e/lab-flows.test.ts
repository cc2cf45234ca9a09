/**
 * The reference guide's traffic flows in a `klab up` lab (native driver), through the lab's own
 * system pods: kube-proxy (a hostNetwork DaemonSet loading each node's dataplane), CoreDNS (in-cluster
 * credentials from its projected service-account token, its Corefile from a ConfigMap volume) and
 * the ingress-nginx controller behind a LoadBalancer Service.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWith } from "../support/prereq.ts";
import { runCommand, until } from "../support/wait.ts";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "../..");
const cli = join(root, "packages/cli/bin/klab.js");
const name = `klabf${process.pid % 100000}`;
const home = mkdtempSync(join(tmpdir(), "klab-flows-"));
const env = { ...process.env, KLAB_HOME: home };
const kubeconfig = join(home, name, "kubeconfig");
let httpPort = 0;
let httpsPort = 0;

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}

async function klab(args: string[], timeout = 300_000): Promise<string> {
  const { stdout } = await run(process.execPath, [cli, ...args], { env, timeout, maxBuffer: 16 << 20 });
  return stdout;
}

const sh = (cmd: string, args: string[]) => runCommand(cmd, args, { env });
const kubectl = (args: string[]) => sh("kubectl", ["--kubeconfig", kubeconfig, ...args]);

interface PodInfo {
  name: string;
  ip: string;
  node: string;
  ready: boolean;
}

async function pods(namespace: string, selector: string): Promise<PodInfo[]> {
  const { stdout } = await kubectl(["-n", namespace, "get", "pods", "-l", selector, "-o", "json"]);
  const list = JSON.parse(stdout) as {
    items: {
      metadata: { name: string; deletionTimestamp?: string };
      spec: { nodeName?: string };
      status: { podIP?: string; phase?: string; conditions?: { type: string; status: string }[] };
    }[];
  };
  return list.items
    .filter((p) => !p.metadata.deletionTimestamp && p.status.phase === "Running")
    .map((p) => ({
      name: p.metadata.name,
      ip: p.status.podIP ?? "",
      node: p.spec.nodeName ?? "",
      ready: !!p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
    }));
}

const allReady = (want: number) => (p: PodInfo[]) =>
  p.length === want && p.every((x) => x.ready) ? p : undefined;

describeWith(
  { root: true, tun: true, tools: ["ip", "kubectl", "curl"] },
  "the guide's flows in klab up (system pods: kube-proxy, CoreDNS, ingress-nginx)",
  () => {
    beforeAll(async () => {
      const apiPort = await freePort();
      httpPort = await freePort();
      httpsPort = await freePort();
      await klab([
        "up",
        "--name",
        name,
        "--nodes",
        "2",
        "--api-port",
        String(apiPort),
        "--http-port",
        String(httpPort),
        "--https-port",
        String(httpsPort),
      ]);
    }, 300_000);

    afterAll(async () => {
      await klab(["down", "--name", name]).catch(() => undefined);
      rmSync(home, { recursive: true, force: true });
    }, 120_000);

    it("runs kube-proxy on every node, loading that node's dataplane", async () => {
      const proxies = await until("kube-proxy Ready on both nodes", 90_000, async () =>
        allReady(2)(await pods("kube-system", "k8s-app=kube-proxy")),
      );
      expect(new Set(proxies.map((p) => p.node))).toEqual(new Set(["node-1", "node-2"]));
      for (const node of ["node-1", "node-2"]) {
        const rules = await until(`the web-service rules on ${node}`, 60_000, async () => {
          const text = await klab(["iptables-save", "--name", name, "--node", node, "-t", "nat"], 30_000);
          return text.includes('"default/web-service:http') || text.includes("default/web-service")
            ? text
            : undefined;
        });
        expect(rules).toMatch(/^-A KUBE-SERVICES .*default\/web-service.* -j KUBE-SVC-[A-Z0-9]{16}$/m);
      }
    }, 150_000);

    it("gets CoreDNS and the ingress controller Ready, and the LoadBalancer its address", async () => {
      await until("2 Ready CoreDNS pods", 120_000, async () =>
        allReady(2)(await pods("kube-system", "k8s-app=kube-dns")),
      );
      await until("the ingress controller Ready", 120_000, async () =>
        allReady(1)(await pods("ingress-nginx", "app.kubernetes.io/component=controller")),
      );
      const lb = await until("the LoadBalancer address", 60_000, async () => {
        const { stdout } = await kubectl([
          "-n",
          "ingress-nginx",
          "get",
          "svc",
          "ingress-nginx-controller",
          "-o",
          "jsonpath={.status.loadBalancer.ingress[0].ip}",
        ]);
        return stdout || undefined;
      });
      expect(lb).toBe("172.29.255.200");
    }, 240_000);

    it("mounts the projected service-account token and refreshes ConfigMap volumes", async () => {
      const dns = (await pods("kube-system", "k8s-app=kube-dns"))[0]!;
      const sa = await kubectl([
        "-n",
        "kube-system",
        "exec",
        dns.name,
        "--",
        "cat",
        "/var/run/secrets/kubernetes.io/serviceaccount/namespace",
      ]);
      expect(sa.stdout).toBe("kube-system");
      const patched = await kubectl([
        "-n",
        "kube-system",
        "get",
        "configmap",
        "coredns",
        "-o",
        "jsonpath={.data.Corefile}",
      ]);
      const corefile = `# edited by the flows test\n${patched.stdout}`;
      const apply = await kubectl([
        "-n",
        "kube-system",
        "patch",
        "configmap",
        "coredns",
        "--type=merge",
        "-p",
        JSON.stringify({ data: { Corefile: corefile } }),
      ]);
      expect(apply.code).toBe(0);
      await until("the new Corefile inside the CoreDNS pod", 60_000, async () => {
        const r = await kubectl([
          "-n",
          "kube-system",
          "exec",
          dns.name,
          "--",
          "cat",
          "/etc/coredns/Corefile",
        ]);
        return r.stdout.startsWith("# edited by the flows test") ? true : undefined;
      });
    }, 90_000);

    it("resolves and reaches a Service by name from a pod, through CoreDNS and kube-proxy's NAT", async () => {
      const webs = await until("2 Ready web pods", 120_000, async () =>
        allReady(2)(await pods("default", "app=web")),
      );
      const from = webs[0]!;
      const { stdout: clusterIP } = await kubectl([
        "get",
        "svc",
        "web-service",
        "-o",
        "jsonpath={.spec.clusterIP}",
      ]);
      const lookup = await until("nslookup web-service", 60_000, async () => {
        const r = await kubectl(["exec", from.name, "--", "nslookup", "web-service"]);
        return r.code === 0 ? r.stdout : undefined;
      });
      expect(lookup).toContain("Server:\t\t10.96.0.10");
      expect(lookup).toMatch(
        new RegExp(
          `Name:\\s+web-service\\.default\\.svc\\.cluster\\.local\\s+Address: ${clusterIP.replace(/\./g, "\\.")}`,
        ),
      );
      const names = new Set(webs.map((w) => w.name));
      const seen = new Set<string>();
      for (let i = 0; i < 12; i++) {
        const r = await kubectl([
          "exec",
          from.name,
          "--",
          "curl",
          "-s",
          "-m",
          "5",
          "http://web-service/hostname",
        ]);
        expect(names.has(r.stdout), `answer ${JSON.stringify(r.stdout)} ${r.stderr}`).toBe(true);
        seen.add(r.stdout);
      }
      expect(seen.size).toBeGreaterThanOrEqual(1);
    }, 180_000);

    it("reaches the emulated internet by name from a pod (forward . /etc/resolv.conf)", async () => {
      const from = (await pods("default", "app=web"))[0]!;
      const r = await until("api.example.com from a pod", 60_000, async () => {
        const x = await kubectl([
          "exec",
          from.name,
          "--",
          "curl",
          "-s",
          "-m",
          "5",
          "http://api.example.com/api",
        ]);
        return x.code === 0 && x.stdout ? x.stdout : undefined;
      });
      const body = JSON.parse(r) as { service: string; clientIP: string };
      expect(body.service).toBe("api.example.com");
      expect(body.clientIP).toBe(from.ip);
    }, 90_000);

    it("serves myapp.com from the host through the LoadBalancer and the ingress (TLS, paths, ssl-redirect)", async () => {
      const webs = new Set((await pods("default", "app=web")).map((p) => p.name));
      const apiIPs = new Set((await pods("default", "app=api")).map((p) => `${p.ip}:8080`));
      const https = (path: string) =>
        sh("curl", [
          "-sk",
          "-m",
          "10",
          "--resolve",
          `myapp.com:${httpsPort}:127.0.0.1`,
          `https://myapp.com:${httpsPort}${path}`,
        ]);
      const first = await until("the ingress answering on the host", 90_000, async () => {
        const r = await https("/hostname");
        return r.code === 0 && r.stdout ? r.stdout : undefined;
      });
      expect(webs.has(first)).toBe(true);
      // every request answers: the LoadBalancer only sends to nodes whose health check passes
      for (let i = 0; i < 6; i++) expect(webs.has((await https("/hostname")).stdout)).toBe(true);
      // /api goes to api-service unchanged (no rewrite in the guide's Ingress); the api pods answer
      // every path with their name, and the controller's access log names the upstream
      const apiNames = new Set((await pods("default", "app=api")).map((p) => p.name));
      const api = await https("/api/hostname");
      expect(apiNames.has(api.stdout.trim())).toBe(true);
      const log = await until("the access log line of /api/hostname", 30_000, async () => {
        const r = await kubectl([
          "-n",
          "ingress-nginx",
          "logs",
          "-l",
          "app.kubernetes.io/component=controller",
          "--tail=50",
        ]);
        return r.stdout.split("\n").find((l) => l.includes('"GET /api/hostname'));
      });
      expect(log).toContain("[default-api-service-80]");
      const upstream = /\[default-api-service-80\] \[\] (\S+)/.exec(log)![1]!;
      expect(apiIPs.has(upstream)).toBe(true);
      const plain = await sh("curl", [
        "-s",
        "-m",
        "10",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        "--resolve",
        `myapp.com:${httpPort}:127.0.0.1`,
        `http://myapp.com:${httpPort}/`,
      ]);
      expect(plain.stdout).toBe("308 https://myapp.com/");
    }, 150_000);
  },
);
