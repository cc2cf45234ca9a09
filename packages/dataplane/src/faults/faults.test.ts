import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { once } from "node:events";
import { promisify } from "node:util";
import { configureInterface, openTun } from "@klab/tun";
import { Registry } from "prom-client";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { describeWith } from "../../../../test/support/prereq.ts";
import { NodeDataplane } from "../node-dataplane.ts";
import { validateFault, type Fault } from "./model.ts";

const run = promisify(execFile);
const id = randomBytes(3).toString("hex");
const lo = `127.${randomInt(10, 250)}.${randomInt(0, 250)}`;
const NODE1 = `${lo}.3`;
const NODE2 = `${lo}.4`;
const POD_A = "10.248.1.5";
const POD_B = "10.248.1.6";
const POD_C = "10.248.2.5";
const SERVICE = "10.96.0.60";

const namespaces: string[] = [];
const children: ChildProcess[] = [];
const dataplanes: NodeDataplane[] = [];

async function podNamespace(suffix: string, podIP: string) {
  const ns = `klabt-fault-${id}-${suffix}`;
  await run("ip", ["netns", "add", ns]);
  namespaces.push(ns);
  for (const k of ["all", "default"])
    await run("ip", ["netns", "exec", ns, "sysctl", "-qw", `net.ipv6.conf.${k}.disable_ipv6=1`]);
  await run("ip", ["-n", ns, "link", "set", "lo", "up"]);
  const tun = openTun("eth0", { netns: `/run/netns/${ns}` });
  // Only the lab's pod and Service ranges: nothing leaves the namespaces.
  await configureInterface({
    netns: ns,
    name: "eth0",
    cidr: `${podIP}/24`,
    mtu: 1450,
    routes: ["10.248.0.0/16"],
  });
  await run("ip", ["-n", ns, "route", "add", "10.96.0.0/12", "dev", "eth0"]);
  return { ns, tun };
}

function inNs(ns: string, cmd: string[], timeout = 30_000) {
  return run("ip", ["netns", "exec", ns, ...cmd], { timeout });
}

/** An HTTP server answering GET /N with N bytes. */
async function sizedServer(ns: string, port: number): Promise<void> {
  const code = `require("http").createServer((q, s) => s.end(Buffer.alloc(Number(q.url.slice(1)) || 0, 120))).listen(${port}, "0.0.0.0", () => console.log("ready"))`;
  const child = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", code], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d));
  while (!out.includes("ready")) {
    if (child.exitCode !== null) throw new Error(`server in ${ns} exited`);
    await once(child.stdout!, "data");
  }
}

/** ping's per-reply round-trip times in ms, and how many replies came back. */
async function ping(ns: string, dst: string, count: number, interval = "0.2") {
  const res = await inNs(ns, ["ping", "-n", "-c", String(count), "-i", interval, "-W", "2", dst]).catch(
    (e: { stdout: string }) => e,
  );
  const rtts = [...res.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  const received = Number(/(\d+) received/.exec(res.stdout)?.[1] ?? 0);
  return { rtts, received, stdout: res.stdout };
}

async function curl(ns: string, url: string, maxTime = 10) {
  return inNs(ns, [
    "curl",
    "-s",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code} %{size_download} %{speed_download}",
    "--max-time",
    String(maxTime),
    url,
  ]).then(
    (r) => {
      const [code, size, speed] = r.stdout.split(" ").map(Number);
      return { exit: 0, code, size, speed };
    },
    (e: { code: number }) => ({ exit: e.code, code: 0, size: 0, speed: 0 }),
  );
}

afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  await Promise.allSettled(dataplanes.map((d) => d.stop()));
  await Promise.allSettled(namespaces.map((ns) => run("ip", ["netns", "del", ns])));
});

describeWith(
  { root: true, tun: true, tools: ["ip", "ping", "curl"] },
  "faults injected into two node dataplanes joined by the overlay",
  () => {
    let n1: NodeDataplane;
    let n2: NodeDataplane;
    let a: Awaited<ReturnType<typeof podNamespace>>;
    const registry = new Registry();

    const inject = (...faults: Partial<Fault>[]) => {
      const valid = faults.map((f) => validateFault(f));
      n1.setFaults(valid);
      n2.setFaults(valid);
    };
    const metric = async (fault: string, action: string) => {
      const m = (await registry.getSingleMetric("klab_fault_packets_total")!.get()).values;
      return m.find((v) => v.labels.fault === fault && v.labels.action === action)?.value ?? 0;
    };
    const faultDrops = (reason: string) =>
      [...n1.flows.recent(10_000, { type: "drop" }), ...n2.flows.recent(10_000, { type: "drop" })].filter(
        (e) => e.reason === reason,
      );

    beforeAll(async () => {
      n1 = new NodeDataplane({ nodeName: "node-1", nodeIP: NODE1, podCIDR: "10.248.1.0/24", registry });
      n2 = new NodeDataplane({ nodeName: "node-2", nodeIP: NODE2, podCIDR: "10.248.2.0/24" });
      dataplanes.push(n1, n2);
      await n1.start();
      await n2.start();
      n1.addRemoteNode("10.248.2.0/24", NODE2);
      n2.addRemoteNode("10.248.1.0/24", NODE1);
      a = await podNamespace("a", POD_A);
      const b = await podNamespace("b", POD_B);
      const c = await podNamespace("c", POD_C);
      n1.attachPod(POD_A, a.tun);
      n1.attachPod(POD_B, b.tun);
      n2.attachPod(POD_C, c.tun);
      await sizedServer(b.ns, 8080);
      await sizedServer(c.ns, 8080);
      n1.setServiceNat({
        onNewConnection(_pkt, ctx) {
          if (ctx.flow.dstIP === SERVICE && ctx.flow.dstPort === 80)
            return { action: "DNAT", toIP: POD_B, toPort: 8080, rule: "test-svc" };
          return undefined;
        },
      });
      // Learn the neighbours' addresses before measuring anything.
      expect((await ping(a.ns, POD_B, 1)).received).toBe(1);
      expect((await ping(a.ns, POD_C, 1)).received).toBe(1);
    });

    afterEach(() => {
      n1.setFaults([]);
      n2.setFaults([]);
    });

    it("delay: adds the delay (both ways) to a pod's ping round trip, and goes when cleared", async () => {
      inject({ id: "delay-b", kind: "delay", target: { pod: POD_B }, delayMs: 100, jitterMs: 10 });
      const slow = await ping(a.ns, POD_B, 4);
      expect(slow.received).toBe(4);
      // Out to B and back from B: twice 100 ms ± 10 ms.
      expect(Math.min(...slow.rtts)).toBeGreaterThanOrEqual(175);
      expect(await metric("delay-b", "delayed")).toBeGreaterThanOrEqual(8);
      n1.setFaults([]);
      n2.setFaults([]);
      const fast = await ping(a.ns, POD_B, 4);
      expect(fast.received).toBe(4);
      expect(Math.min(...fast.rtts)).toBeLessThan(150);
    });

    it("delay between nodes applies to the overlay only", async () => {
      inject({ id: "delay-n2", kind: "delay", target: { node: NODE2 }, delayMs: 100 });
      expect(Math.min(...(await ping(a.ns, POD_C, 3)).rtts)).toBeGreaterThanOrEqual(195);
      expect(Math.min(...(await ping(a.ns, POD_B, 3)).rtts)).toBeLessThan(150);
    });

    it("loss: drops about the share asked for, each drop a flow event and a metric", async () => {
      inject({ id: "loss-b", kind: "loss", target: { pod: POD_B }, percent: 30 });
      const lossy = await ping(a.ns, POD_B, 40, "0.05");
      // Each round trip survives with 0.7² ≈ 49%: 40 pings land far inside 5..35.
      expect(lossy.received).toBeGreaterThanOrEqual(5);
      expect(lossy.received).toBeLessThanOrEqual(35);
      const drops = faultDrops("fault:loss-b loss");
      expect(drops.length).toBeGreaterThan(0);
      expect(drops[0]).toMatchObject({ protocol: "ICMP", verdict: "DROPPED" });
      expect(await metric("loss-b", "dropped")).toBe(drops.filter((e) => e.node === "node-1").length);
      n1.setFaults([]);
      expect((await ping(a.ns, POD_B, 5, "0.05")).received).toBe(5);
    });

    it("duplicate: ping sees duplicate replies", async () => {
      inject({ id: "dup-b", kind: "duplicate", target: { pod: POD_B }, percent: 100 });
      const dup = await ping(a.ns, POD_B, 2);
      expect(dup.stdout).toContain("DUP!");
      n1.setFaults([]);
      expect((await ping(a.ns, POD_B, 2)).stdout).not.toContain("DUP!");
    });

    it("corrupt: corrupted packets fail their checksum in the receiver's kernel", async () => {
      inject({ id: "corrupt-b", kind: "corrupt", target: { pod: POD_B }, percent: 100 });
      expect((await ping(a.ns, POD_B, 3)).received).toBe(0);
      expect((await curl(a.ns, `http://${POD_B}:8080/10`, 3)).exit).toBe(28);
      expect(await metric("corrupt-b", "corrupted")).toBeGreaterThan(0);
      n1.setFaults([]);
      expect((await curl(a.ns, `http://${POD_B}:8080/10`)).code).toBe(200);
    });

    it("bandwidth: caps a pod's download to the rate, and not after it is cleared", async () => {
      // 400 kbit/s = 50 kB/s: 150 kB take about 3 s.
      inject({ id: "bw-b", kind: "bandwidth", target: { pod: POD_B }, rateBytesPerSecond: 50_000 });
      const capped = await curl(a.ns, `http://${POD_B}:8080/150000`, 40);
      expect(capped).toMatchObject({ exit: 0, code: 200, size: 150_000 });
      expect(capped.speed).toBeLessThan(75_000);
      expect(await metric("bw-b", "shaped")).toBeGreaterThan(0);
      n1.setFaults([]);
      const free = await curl(a.ns, `http://${POD_B}:8080/150000`, 40);
      expect(free.speed).toBeGreaterThan(75_000);
    });

    it("mtu: a black hole on the overlay swallows a large response but not a small one", async () => {
      inject({ id: "mtu-n2", kind: "mtu", target: { node: NODE2 }, mtu: 1000 });
      expect(await curl(a.ns, `http://${POD_C}:8080/200`)).toMatchObject({ exit: 0, code: 200, size: 200 });
      // Linux sets DF on TCP (path MTU discovery), no ICMP comes back: the transfer hangs.
      expect((await curl(a.ns, `http://${POD_C}:8080/20000`, 4)).exit).toBe(28);
      expect(faultDrops("fault:mtu-n2 mtu").length).toBeGreaterThan(0);
      n1.setFaults([]);
      n2.setFaults([]);
      expect(await curl(a.ns, `http://${POD_C}:8080/20000`)).toMatchObject({ exit: 0, size: 20000 });
    });

    it("partition: nothing crosses between the two nodes, pods on one node still talk", async () => {
      inject({ id: "part-n2", kind: "partition", target: { node: NODE2 } });
      expect((await ping(a.ns, POD_C, 2)).received).toBe(0);
      expect((await ping(a.ns, POD_B, 2)).received).toBe(2);
      expect(faultDrops("fault:part-n2 partition").length).toBeGreaterThan(0);
      n1.setFaults([]);
      n2.setFaults([]);
      expect((await ping(a.ns, POD_C, 2)).received).toBe(2);
    });

    it("reset and timeout on a Service's ClusterIP:port", async () => {
      expect(await curl(a.ns, `http://${SERVICE}/5`)).toMatchObject({ code: 200, size: 5 });
      inject({ id: "svc-reset", kind: "reset", target: { service: `${SERVICE}:80` } });
      const started = Date.now();
      expect((await curl(a.ns, `http://${SERVICE}/5`, 20)).exit).toBe(7); // connection refused: an RST
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(faultDrops("fault:svc-reset reset")[0]).toMatchObject({
        verdict: "REJECTED",
        dst: { ip: SERVICE, port: 80 },
      });
      // The pod itself, reached directly, is not affected.
      expect((await curl(a.ns, `http://${POD_B}:8080/5`)).code).toBe(200);
      inject({ id: "svc-timeout", kind: "timeout", target: { service: `${SERVICE}:80` } });
      expect((await curl(a.ns, `http://${SERVICE}/5`, 3)).exit).toBe(28);
      n1.setFaults([]);
      expect(await curl(a.ns, `http://${SERVICE}/5`)).toMatchObject({ code: 200, size: 5 });
    });
  },
);
