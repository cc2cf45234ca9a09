/**
 * The reference guide's traffic flows in a `klab up` lab (native driver), through the lab's own
 * system pods: kube-proxy (a hostNetwork DaemonSet loading each node's dataplane), CoreDNS (in-cluster
 * credentials from its projected service-account token, its Corefile from a ConfigMap volume) and
 * the ingress-nginx controller behind a LoadBalancer Service.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { startLab, type Lab, type PodInfo } from "../support/lab.ts";
import { describeWith } from "../support/prereq.ts";
import { runCommand, until } from "../support/wait.ts";

let lab: Lab;
const kubectl = (args: string[]) => lab.kubectl(args);
const sh = (cmd: string, args: string[]) => runCommand(cmd, args, { env: lab.env });
const pods = (namespace: string, selector: string) => lab.pods(namespace, selector);
async function klab(args: string[], timeoutMs = 300_000): Promise<string> {
  const r = await lab.klab(args, { timeoutMs });
  if (r.code !== 0) throw new Error(`klab ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

const allReady = (want: number) => (p: PodInfo[]) =>
  p.length === want && p.every((x) => x.ready) ? p : undefined;

describeWith(
  { root: true, tun: true, tools: ["ip", "kubectl", "curl"] },
  "the guide's flows in klab up (system pods: kube-proxy, CoreDNS, ingress-nginx)",
  () => {
    beforeAll(async () => {
      lab = await startLab({ prefix: "klabf", nodes: 2 });
    }, 420_000);

    afterAll(async () => {
      await lab?.down().catch(() => undefined);
    }, 120_000);

    it("runs kube-proxy on every node, loading that node's dataplane", async () => {
      const proxies = await until("kube-proxy Ready on both nodes", 90_000, async () =>
        allReady(2)(await pods("kube-system", "k8s-app=kube-proxy")),
      );
      expect(new Set(proxies.map((p) => p.node))).toEqual(new Set(["node-1", "node-2"]));
      for (const node of ["node-1", "node-2"]) {
        const rules = await until(`the web-service rules on ${node}`, 60_000, async () => {
          const text = await klab(["iptables-save", "--name", lab.name, "--node", node, "-t", "nat"], 30_000);
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
          `myapp.com:${lab.httpsPort}:127.0.0.1`,
          `https://myapp.com:${lab.httpsPort}${path}`,
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
        `myapp.com:${lab.httpPort}:127.0.0.1`,
        `http://myapp.com:${lab.httpPort}/`,
      ]);
      expect(plain.stdout).toBe("308 https://myapp.com/");
    }, 150_000);
  },
);
