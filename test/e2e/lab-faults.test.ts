/**
 * Every fault kind of `klab fault` in a real `klab up` lab, measured from a pod with the tools a
 * learner would use (ping, curl, dig, kubectl) before, during and after the fault. Bounds are
 * statistical and generous: the machine running this may be slow and busy.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { startLab, type Lab } from "../support/lab.ts";
import { describeWith } from "../support/prereq.ts";
import { until } from "../support/wait.ts";

let lab: Lab;
let serverIP = "";
let serviceIP = "";

const MANIFESTS = `
apiVersion: v1
kind: Pod
metadata: {name: client, labels: {app: client}}
spec:
  nodeSelector: {kubernetes.io/hostname: node-1}
  containers:
  - name: client
    image: nicolaka/netshoot
    command: ["sleep", "1000000"]
---
apiVersion: v1
kind: Pod
metadata: {name: server, labels: {app: server}}
spec:
  nodeSelector: {kubernetes.io/hostname: node-2}
  containers:
  - name: server
    image: registry.k8s.io/e2e-test-images/agnhost:2.39
    args: ["netexec", "--http-port=8080"]
---
apiVersion: v1
kind: Service
metadata: {name: server}
spec:
  selector: {app: server}
  ports: [{port: 80, targetPort: 8080}]
`;

async function klab(args: string[], timeoutMs = 120_000): Promise<string> {
  const r = await lab.klab([...args, "--name", lab.name], { timeoutMs });
  if (r.code !== 0) throw new Error(`klab ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}
const inject = (...args: string[]) => klab(["fault", "inject", ...args]);
const clear = (id: string) => klab(["fault", "clear", id]);
const inClient = (cmd: string[], timeoutMs = 120_000) => lab.exec("default", "client", cmd, timeoutMs);

/** ping from the client pod: the round-trip times seen and the share of replies missing. */
async function ping(ip: string, count: number, interval = "0.2"): Promise<{ rtts: number[]; loss: number }> {
  const r = await inClient(["ping", "-n", "-c", String(count), "-i", interval, "-W", "2", ip], 300_000);
  const rtts = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  if (!m) throw new Error(`ping printed no summary: ${r.stdout} ${r.stderr}`);
  return { rtts, loss: 1 - Number(m[2]) / Number(m[1]) };
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** curl from the client pod: its exit code, body size and total time in ms. */
async function curl(url: string, maxTime = 5): Promise<{ code: number; size: number; ms: number }> {
  const r = await inClient([
    "curl",
    "-s",
    "-o",
    "/dev/null",
    "--max-time",
    String(maxTime),
    "-w",
    "%{size_download} %{time_total}",
    url,
  ]);
  const [size, t] = r.stdout.trim().split(" ");
  return { code: r.code, size: Number(size), ms: Number(t) * 1000 };
}

/** Status of an A query from the client pod to the cluster DNS, and dig's query time. */
async function dig(name: string): Promise<{ status: string; ms: number }> {
  const r = await inClient(["dig", "+tries=1", "+time=5", "@10.96.0.10", name, "A"]);
  return {
    status: /status: ([A-Z]+)/.exec(r.stdout)?.[1] ?? `no answer (${r.code})`,
    ms: Number(/Query time: (\d+) msec/.exec(r.stdout)?.[1] ?? NaN),
  };
}

/** ms the client waits until the Service closes an HTTP/1.0 connection (it reads until EOF). */
async function timeToClose(): Promise<number> {
  const script =
    `s=$(date +%s%N); exec 3<>/dev/tcp/${serviceIP}/80; printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; ` +
    `cat <&3 >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 ))`;
  const r = await inClient(["bash", "-c", script]);
  if (r.code !== 0) throw new Error(`bash /dev/tcp failed: ${r.stderr}`);
  return Number(r.stdout.trim());
}

const nodeReady = async (node: string) =>
  (
    await lab.kubectlOk([
      "get",
      "node",
      node,
      "-o",
      `jsonpath={.status.conditions[?(@.type=="Ready")].status}`,
    ])
  ).trim();

describeWith(
  { root: true, tun: true, tools: ["ip", "kubectl", "curl", "dig", "ping"] },
  "klab fault: every fault kind measured in a klab up lab",
  () => {
    beforeAll(async () => {
      lab = await startLab({ prefix: "klabz", nodes: 2, bare: true });
      await lab.kubectlOk(["apply", "-f", "-"], { input: MANIFESTS });
      await lab.waitReady("default", "app=client", 1);
      serverIP = (await lab.waitReady("default", "app=server", 1))[0]!.ip;
      serviceIP = (await lab.kubectlOk(["get", "svc", "server", "-o", "jsonpath={.spec.clusterIP}"])).trim();
      await until("the client to reach the Service", 120_000, async () =>
        (await curl(`http://${serviceIP}/`)).code === 0 ? true : undefined,
      );
    }, 600_000);

    afterAll(async () => {
      await lab?.down().catch(() => undefined);
    }, 180_000);

    it("delay adds its latency between the nodes, and goes when cleared", async () => {
      const before = median((await ping(serverIP, 10)).rtts);
      await inject("delay", "node/node-2", "--delay", "400ms", "--id", "slow-link");
      expect(await klab(["fault", "list"])).toMatch(/slow-link\s+delay\s+node 172\.29\.0\.\d+ delay=400ms/);
      const during = await until("the delay to apply", 120_000, async () => {
        const m = median((await ping(serverIP, 10)).rtts);
        return m > before + 300 ? m : undefined;
      });
      // Both directions cross node-2's links: about 800 ms more per round trip.
      expect(during).toBeGreaterThan(before + 600);
      await clear("slow-link");
      await until("the delay to go", 120_000, async () => {
        const m = median((await ping(serverIP, 10)).rtts);
        return m < during - 600 ? m : undefined;
      });
    }, 420_000);

    it("loss drops about its share of packets each way", async () => {
      await inject("loss", "pod/server", "--loss", "20%", "--id", "lossy");
      await until("loss to apply", 120_000, async () =>
        (await ping(serverIP, 10, "0.05")).loss > 0 ? true : undefined,
      );
      const { loss } = await ping(serverIP, 200, "0.05");
      // 20% on the request and 20% on the reply: 1 - 0.8 * 0.8 = 36% of pings unanswered.
      expect(loss).toBeGreaterThan(0.2);
      expect(loss).toBeLessThan(0.55);
      await clear("lossy");
      await until("loss to go", 120_000, async () =>
        (await ping(serverIP, 50, "0.05")).loss <= 0.04 ? true : undefined,
      );
    }, 420_000);

    it("an MTU black hole stalls a large response with DF set, not a small one", async () => {
      // a short request for a response of about 24 kB (agnhost runs `seq 1 5000` and answers its output)
      const big = `http://${serverIP}:8080/shell?cmd=seq%201%205000`;
      const small = `http://${serverIP}:8080/echo?msg=hello`;
      const whole = (await curl(big)).size;
      expect(whole).toBeGreaterThan(20_000);
      await inject("mtu", "pod/server", "--mtu", "1000", "--id", "mtu-hole");
      await until("the black hole", 120_000, async () =>
        (await curl(big, 4)).code === 28 ? true : undefined,
      );
      expect(await curl(small)).toMatchObject({ code: 0, size: 5 });
      await clear("mtu-hole");
      await until("large responses again", 120_000, async () =>
        (await curl(big)).size === whole ? true : undefined,
      );
    }, 420_000);

    it("reset and timeout on a Service, as Toxiproxy's reset_peer and timeout", async () => {
      const url = `http://${serviceIP}/`;
      await inject("reset", "service/server", "--id", "rst");
      const reset = await until("the reset", 120_000, async () => {
        const r = await curl(url);
        return r.code !== 0 ? r : undefined;
      });
      // A reset answers the SYN: curl sees the connection refused (7) or reset (56), at once.
      expect([7, 56]).toContain(reset.code);
      await clear("rst");
      await until("the Service again", 120_000, async () =>
        (await curl(url)).code === 0 ? true : undefined,
      );
      await inject("timeout", "service/server", "--id", "tmo");
      await until("the timeout", 120_000, async () => ((await curl(url, 3)).code === 28 ? true : undefined));
      await clear("tmo");
      await until("the Service again", 120_000, async () =>
        (await curl(url)).code === 0 ? true : undefined,
      );
    }, 420_000);

    it("slow-close holds the Service's close back; limit-data cuts a response at its limit", async () => {
      const before = await timeToClose();
      await inject("slow-close", "service/server", "--delay", "3s", "--id", "slowclose");
      await until("the slow close", 120_000, async () =>
        (await timeToClose()) > before + 2500 ? true : undefined,
      );
      await clear("slowclose");
      await until("prompt closes", 120_000, async () =>
        (await timeToClose()) < before + 1500 ? true : undefined,
      );

      const big = `http://${serviceIP}/shell?cmd=seq%201%205000`;
      const small = `http://${serviceIP}/echo?msg=hello`;
      await inject("limit-data", "service/server", "--bytes", "2000", "--id", "limit");
      const cut = await until("the data limit", 120_000, async () => {
        const r = await curl(big);
        return r.code !== 0 ? r : undefined;
      });
      expect(cut.code).toBe(56);
      expect(cut.size).toBeLessThan(2000);
      expect(await curl(small)).toMatchObject({ code: 0, size: 5 });
      await clear("limit");
      await until("whole responses", 120_000, async () =>
        (await curl(big)).size > 20_000 ? true : undefined,
      );
    }, 420_000);

    it("a partition cuts node-2's pods off from node-1", async () => {
      await inject("partition", "node/node-2", "--id", "split");
      await until("the partition", 120_000, async () =>
        (await ping(serverIP, 3)).loss === 1 ? true : undefined,
      );
      const { loss } = await ping(serverIP, 10);
      expect(loss).toBe(1);
      await clear("split");
      await until("the link back", 120_000, async () =>
        (await ping(serverIP, 3)).loss < 1 ? true : undefined,
      );
    }, 420_000);

    it("DNS faults answer SERVFAIL, NXDOMAIN or late for a name pattern", async () => {
      const name = "server.default.svc.cluster.local";
      expect((await dig(name)).status).toBe("NOERROR");
      await inject("dns-servfail", "server.default.*", "--id", "dns-sf");
      await until("SERVFAIL", 90_000, async () =>
        (await dig(name)).status === "SERVFAIL" ? true : undefined,
      );
      expect((await dig("kubernetes.default.svc.cluster.local")).status).toBe("NOERROR");
      await clear("dns-sf");
      await inject("dns-nxdomain", name + ".", "--id", "dns-nx");
      await until("NXDOMAIN", 90_000, async () =>
        (await dig(name)).status === "NXDOMAIN" ? true : undefined,
      );
      await clear("dns-nx");
      await inject("dns-delay", "*.svc.cluster.local.", "--delay", "1500ms", "--id", "dns-slow");
      await until("slow answers", 90_000, async () => {
        const r = await dig(name);
        return r.status === "NOERROR" && r.ms >= 1400 ? true : undefined;
      });
      await clear("dns-slow");
      await until("prompt answers", 120_000, async () => {
        const r = await dig(name);
        return r.status === "NOERROR" && r.ms < 1000 ? true : undefined;
      });
    }, 400_000);

    it("kill-container kills the container once; the kubelet restarts it", async () => {
      const before = (await lab.pods("default", "app=server"))[0]!.restarts;
      const out = await inject("kill-container", "pod/server", "--id", "kill-1");
      expect(out).toMatch(/fault\/kill-1 injected/);
      // One-shot: the node carried it out and took it off the list.
      expect(await klab(["fault", "list"])).not.toMatch(/kill-1/);
      await until("a restart", 120_000, async () => {
        const p = (await lab.pods("default", "app=server"))[0];
        return p && p.restarts > before && p.ready ? true : undefined;
      });
    }, 420_000);

    it("stop-kube-proxy leaves node-1's rules stale while Services change, until cleared", async () => {
      await inject("stop-kube-proxy", "node/node-1", "--id", "proxy-down");
      await lab.kubectlOk([
        "expose",
        "pod",
        "server",
        "--name",
        "server-new",
        "--port",
        "81",
        "--target-port",
        "8080",
      ]);
      const ip = (
        await lab.kubectlOk(["get", "svc", "server-new", "-o", "jsonpath={.spec.clusterIP}"])
      ).trim();
      // node-2's kube-proxy programs the new Service; node-1's does not.
      await until("node-2's rules", 120_000, async () =>
        (await klab(["iptables-save", "--node", "node-2", "-t", "nat"])).includes("default/server-new")
          ? true
          : undefined,
      );
      expect(await klab(["iptables-save", "--node", "node-1", "-t", "nat"])).not.toContain(
        "default/server-new",
      );
      expect((await curl(`http://${ip}:81/`, 3)).code).not.toBe(0);
      await clear("proxy-down");
      await until("the new Service from node-1", 120_000, async () =>
        (await curl(`http://${ip}:81/`, 3)).code === 0 ? true : undefined,
      );
    }, 420_000);

    it("conntrack-flush empties node-1's table; conntrack-fill fills it so new connections drop", async () => {
      await curl(`http://${serviceIP}/`);
      // node-1's TCP entries towards the Service, as `conntrack -L -p tcp --dst` prints them
      const listServiceEntries = () =>
        lab.klab([
          "conntrack",
          "--name",
          lab.name,
          "--node",
          "node-1",
          "-L",
          "-p",
          "tcp",
          "--dst",
          serviceIP,
        ]);
      const listed = await listServiceEntries();
      expect(listed.stdout).toMatch(
        new RegExp(`^tcp {6}6 \\d+ [A-Z_]+ src=[\\d.]+ dst=${serviceIP} sport=\\d+ dport=80 `, "m"),
      );
      expect(listed.stderr).toMatch(
        /conntrack v1\.4\.\d \(conntrack-tools\): [1-9]\d* flow entries have been shown\./,
      );
      await inject("conntrack-flush", "node/node-1", "--id", "flush-1");
      const after = await listServiceEntries();
      expect(after.stdout).toBe("");

      await inject("conntrack-fill", "node/node-1", "--max", "512", "--id", "fill");
      await until("a full table", 120_000, async () =>
        (await klab(["conntrack", "--node", "node-1", "-C"])).trim() === "512" ? true : undefined,
      );
      expect((await curl(`http://${serviceIP}/`, 3)).code).toBe(28);
      const drops = await klab(["observe", "--node", "node-1", "--verdict", "DROPPED", "--last", "50"]);
      expect(drops).toContain("fault:fill conntrack-fill: nf_conntrack: table full, dropping packet");
      await clear("fill");
      await until("room in the table", 120_000, async () =>
        (await curl(`http://${serviceIP}/`, 3)).code === 0 ? true : undefined,
      );
    }, 420_000);

    it("freeze-node stops node-2's heartbeats: NotReady, then Ready once cleared", async () => {
      await inject("freeze-node", "node/node-2", "--id", "frozen");
      await until(
        "node-2 NotReady",
        180_000,
        async () => ((await nodeReady("node-2")) !== "True" ? true : undefined),
        2000,
      );
      await clear("frozen");
      await until(
        "node-2 Ready",
        120_000,
        async () => ((await nodeReady("node-2")) === "True" ? true : undefined),
        1000,
      );
    }, 400_000);
  },
);
