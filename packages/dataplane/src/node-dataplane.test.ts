import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { once } from "node:events";
import { promisify } from "node:util";
import { configureInterface, openTun } from "@klab/tun";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWith } from "../../../test/support/prereq.ts";
import { buildUDP, refreshChecksums } from "./build.ts";
import { parseIP } from "./ip.ts";
import { NodeDataplane } from "./node-dataplane.ts";

const run = promisify(execFile);
const id = randomBytes(3).toString("hex");
// A random loopback /24 per run for the "node network", so parallel runs never share addresses.
const lo = `127.${randomInt(10, 250)}.${randomInt(0, 250)}`;
const NODE1 = `${lo}.3`;
const NODE2 = `${lo}.4`;

const POD_A = "10.248.1.5";
const POD_B = "10.248.1.6";
const POD_C = "10.248.2.5";

const namespaces: string[] = [];
const children: ChildProcess[] = [];
const dataplanes: NodeDataplane[] = [];

async function podNamespace(suffix: string, podIP: string) {
  const ns = `klabt-dp-${id}-${suffix}`;
  await run("ip", ["netns", "add", ns]);
  namespaces.push(ns);
  for (const k of ["all", "default"])
    await run("ip", ["netns", "exec", ns, "sysctl", "-qw", `net.ipv6.conf.${k}.disable_ipv6=1`]);
  await run("ip", ["-n", ns, "link", "set", "lo", "up"]);
  const tun = openTun("eth0", { netns: `/run/netns/${ns}` });
  // No default route: the pods reach each other's range and nothing else.
  await configureInterface({
    netns: ns,
    name: "eth0",
    cidr: `${podIP}/24`,
    mtu: 1450,
    routes: ["10.248.0.0/16"],
  });
  return { ns, tun };
}

function inNs(ns: string, cmd: string[], timeout = 20_000) {
  return run("ip", ["netns", "exec", ns, ...cmd], { timeout });
}

/** An HTTP server in a namespace that answers with the client address it sees. */
async function clientIPServer(ns: string, port: number): Promise<void> {
  const code = `require("http").createServer((q, s) => s.end(q.socket.remoteAddress)).listen(${port}, "0.0.0.0", () => console.log("ready"))`;
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

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  await Promise.allSettled(dataplanes.map((d) => d.stop()));
  await Promise.allSettled(namespaces.map((ns) => run("ip", ["netns", "del", ns])));
});

describeWith(
  { root: true, tun: true, tools: ["ip", "ping", "curl", "python3"] },
  "node dataplane on one node",
  () => {
    let dp: NodeDataplane;
    let a: Awaited<ReturnType<typeof podNamespace>>;
    let b: Awaited<ReturnType<typeof podNamespace>>;

    beforeAll(async () => {
      dp = new NodeDataplane({ nodeName: "node-1", nodeIP: NODE1, podCIDR: "10.248.1.0/24", overlay: false });
      dataplanes.push(dp);
      await dp.start();
      a = await podNamespace("a", POD_A);
      b = await podNamespace("b", POD_B);
      dp.attachPod(POD_A, a.tun);
      dp.attachPod(POD_B, b.tun);
    });

    it("carries ping between two pods", async () => {
      const { stdout } = await inNs(a.ns, ["ping", "-c", "3", "-i", "0.2", "-W", "5", POD_B]);
      expect(stdout).toContain("3 received");
      expect(
        dp.flows.recent(100, { type: "new" }).some((e) => e.protocol === "ICMP" && e.dst.ip === POD_B),
      ).toBe(true);
    });

    it("answers ping for the pods' gateway address", async () => {
      const { stdout } = await inNs(a.ns, ["ping", "-c", "1", "-W", "5", "10.248.1.1"]);
      expect(stdout).toContain("1 received");
    });

    it("carries TCP between pods with the client's IP unchanged (no NAT)", async () => {
      await clientIPServer(b.ns, 8080);
      const { stdout } = await inNs(a.ns, ["curl", "-s", "--max-time", "10", `http://${POD_B}:8080/`]);
      expect(stdout).toBe(POD_A);
      const conn = [...dp.conntrack.entries()].find((e) => e.original.dstPort === 8080);
      expect(conn?.tcpState).toMatch(/TIME_WAIT|CLOSE|FIN_WAIT|LAST_ACK|CLOSE_WAIT|ESTABLISHED/);
    });

    it("counts and drops malformed packets written into a pod's TUN, and keeps forwarding", async () => {
      const good = buildUDP(
        { src: parseIP(POD_A), dst: parseIP(POD_B), srcPort: 40000, dstPort: 9 },
        Buffer.from("hello"),
      );
      const badChecksum = Buffer.from(good);
      badChecksum[10] ^= 0x55;
      const fragment = Buffer.from(good);
      fragment.writeUInt16BE(0x2000, 6);
      refreshChecksums(fragment);
      const badTotal = Buffer.from(good);
      badTotal.writeUInt16BE(4000, 2);
      refreshChecksums(badTotal);
      const badIhl = Buffer.from(good);
      badIhl[0] = 0x43;
      const badUdp = Buffer.from(good);
      badUdp[badUdp.length - 1] ^= 0xff;
      const packets = [Buffer.from([0x45, 0x00, 0x00]), badChecksum, fragment, badTotal, badIhl, badUdp];
      const before = (r: string) => dp.stats.dropped(r);
      const reasons = [
        "short-packet",
        "bad-ip-checksum",
        "fragment",
        "bad-total-length",
        "bad-ihl",
        "bad-l4-checksum",
      ];
      const counts = reasons.map(before);
      // A packet socket on eth0 hands our bytes to the TUN unchanged (the kernel would fix an IP header).
      const script = [
        "import socket, sys",
        "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)",
        "s.bind(('eth0', 0))",
        "[s.send(bytes.fromhex(h)) for h in sys.argv[1:]]",
      ].join("\n");
      await inNs(a.ns, ["python3", "-c", script, ...packets.map((p) => p.toString("hex"))]);
      await until("the drops to be counted", () => reasons.every((r, i) => dp.stats.dropped(r) > counts[i]));
      expect(dp.flows.recent(1000, { verdict: "DROPPED" }).map((e) => e.reason)).toEqual(
        expect.arrayContaining(reasons),
      );
      const { stdout } = await inNs(a.ns, ["ping", "-c", "1", "-W", "5", POD_B]);
      expect(stdout).toContain("1 received");
    });
  },
);

describeWith(
  { root: true, tun: true, tools: ["ip", "ping", "curl", "tcpdump"] },
  "node dataplanes on two nodes joined by the VXLAN overlay",
  () => {
    let a: Awaited<ReturnType<typeof podNamespace>>;
    let c: Awaited<ReturnType<typeof podNamespace>>;
    let n1: NodeDataplane;
    let n2: NodeDataplane;

    beforeAll(async () => {
      n1 = new NodeDataplane({ nodeName: "node-1", nodeIP: NODE1, podCIDR: "10.248.1.0/24" });
      n2 = new NodeDataplane({ nodeName: "node-2", nodeIP: NODE2, podCIDR: "10.248.2.0/24" });
      dataplanes.push(n1, n2);
      await n1.start();
      await n2.start();
      n1.addRemoteNode("10.248.2.0/24", NODE2);
      n2.addRemoteNode("10.248.1.0/24", NODE1);
      a = await podNamespace("x", POD_A);
      c = await podNamespace("y", POD_C);
      n1.attachPod(POD_A, a.tun);
      n2.attachPod(POD_C, c.tun);
    });

    it("carries ping across nodes, and tcpdump decodes the VXLAN datagrams", async () => {
      const dump = spawn(
        "tcpdump",
        [
          "-i",
          "lo",
          "-n",
          "-e",
          "-l",
          "-c",
          "1",
          "-T",
          "vxlan",
          `udp port 8472 and src host ${NODE1} and dst host ${NODE2}`,
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      children.push(dump);
      let out = "";
      let err = "";
      dump.stdout!.on("data", (d: Buffer) => (out += d));
      dump.stderr!.on("data", (d: Buffer) => (err += d));
      await until("tcpdump to listen", () => err.includes("listening on"));
      const exited = once(dump, "exit");
      const { stdout } = await inNs(a.ns, ["ping", "-c", "3", "-i", "0.2", "-W", "5", POD_C]);
      expect(stdout).toContain("3 received");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      expect(out).toMatch(/VXLAN, flags \[I\] \(0x08\), vni 1/);
      expect(out).toContain(`${POD_A} > ${POD_C}: ICMP echo request`);
      expect(out).toContain("02:4b:");
    });

    it("carries TCP across nodes with the client's pod IP unchanged", async () => {
      await clientIPServer(c.ns, 8081);
      const { stdout } = await inNs(a.ns, ["curl", "-s", "--max-time", "10", `http://${POD_C}:8081/`]);
      expect(stdout).toBe(POD_A);
      // Each node tracks the connection in its own table.
      for (const n of [n1, n2])
        expect([...n.conntrack.entries()].some((e) => e.original.dstPort === 8081)).toBe(true);
    });

    it("drops overlay datagrams from nodes it does not know", async () => {
      const before = n2.stats.dropped("overlay-unknown-peer");
      const { createSocket } = await import("node:dgram");
      const s = createSocket("udp4");
      await new Promise<void>((r) => s.bind(0, `${lo}.9`, () => r()));
      await new Promise<void>((r) => s.send(Buffer.alloc(64), 8472, NODE2, () => r()));
      s.close();
      await until("the datagram to be dropped", () => n2.stats.dropped("overlay-unknown-peer") > before);
    });
  },
);

describeWith(
  { root: true, tun: true, tools: ["ip", "ping", "curl"] },
  "node dataplane with the node's lab0 and a Service NAT stage",
  () => {
    const NODE_IP = "10.249.0.3";
    const POD = "10.248.1.7";
    let dp: NodeDataplane;
    let nodeNs: string;
    let p: Awaited<ReturnType<typeof podNamespace>>;

    beforeAll(async () => {
      dp = new NodeDataplane({
        nodeName: "node-3",
        nodeIP: NODE_IP,
        podCIDR: "10.248.1.0/24",
        overlay: false,
      });
      dataplanes.push(dp);
      await dp.start();
      // The node's namespace: lab0 holds the node's address and routes pods and Services to us.
      nodeNs = `klabt-dp-${id}-n`;
      await run("ip", ["netns", "add", nodeNs]);
      namespaces.push(nodeNs);
      for (const k of ["all", "default"])
        await run("ip", ["netns", "exec", nodeNs, "sysctl", "-qw", `net.ipv6.conf.${k}.disable_ipv6=1`]);
      await run("ip", ["-n", nodeNs, "link", "set", "lo", "up"]);
      const lab0 = openTun("lab0", { netns: `/run/netns/${nodeNs}` });
      // As a node agent sets it up: the node talks to pods and Services from its overlay address
      // (the podCIDR's .0, flannel.1's), and also holds its node IP.
      await configureInterface({
        netns: nodeNs,
        name: "lab0",
        cidr: "10.248.1.0/32",
        mtu: 1450,
        routes: ["10.248.0.0/16 src 10.248.1.0", "10.96.0.0/12 src 10.248.1.0"],
      });
      await run("ip", ["-n", nodeNs, "addr", "add", `${NODE_IP}/32`, "dev", "lab0"]);
      dp.attachHost(lab0);
      p = await podNamespace("p", POD);
      await run("ip", ["-n", p.ns, "route", "add", "10.249.0.0/16", "dev", "eth0"]);
      await run("ip", ["-n", p.ns, "route", "add", "10.96.0.0/12", "dev", "eth0"]);
      dp.attachPod(POD, p.tun);
      await clientIPServer(p.ns, 8082);
      dp.setServiceNat({
        onNewConnection(_pkt, ctx) {
          if (ctx.flow.dstIP === "10.96.0.50" && ctx.flow.dstPort === 80)
            return { action: "DNAT", toIP: POD, toPort: 8082, rule: "test-svc" };
          if (ctx.flow.dstIP === "10.96.0.51" && ctx.flow.dstPort === 80)
            return { action: "DNAT", toIP: POD, toPort: 8082, masquerade: true };
          if (ctx.flow.dstIP === "10.96.0.52") return { action: "REJECT" };
          return undefined;
        },
      });
    });

    it("lets the node's processes reach a pod through lab0, and the pod reach the node", async () => {
      const { stdout } = await inNs(nodeNs, ["curl", "-s", "--max-time", "10", `http://${POD}:8082/`]);
      expect(stdout).toBe("10.248.1.0");
      const ping = await inNs(p.ns, ["ping", "-c", "1", "-W", "5", NODE_IP]);
      expect(ping.stdout).toContain("1 received");
    });

    it("translates a Service address to its backend and back, for real TCP", async () => {
      const fromNode = await inNs(nodeNs, ["curl", "-s", "--max-time", "10", "http://10.96.0.50/"]);
      expect(fromNode.stdout).toBe("10.248.1.0");
      // Hairpin (a pod reaching itself through a Service) needs masquerade, as kube-proxy's
      // KUBE-SEP rules arrange: a packet from its own address would be a martian to the pod.
      const hairpin = await inNs(p.ns, ["curl", "-s", "--max-time", "10", "http://10.96.0.51/"]);
      expect(hairpin.stdout).toBe("10.248.1.1");
      const flow = dp.flows.recent(1000, { type: "new" }).find((e) => e.dst.ip === "10.96.0.50");
      expect(flow).toMatchObject({ rule: "test-svc", natDst: { ip: POD, port: 8082 } });
    });

    it("refuses a rejected Service at once (connection refused, not a timeout)", async () => {
      const started = Date.now();
      const res = await inNs(p.ns, ["curl", "-s", "--max-time", "20", "http://10.96.0.52/"]).catch(
        (e: { code: number }) => e,
      );
      expect((res as { code: number }).code).toBe(7); // curl: couldn't connect
      expect(Date.now() - started).toBeLessThan(15_000);
      const fromNode = await inNs(nodeNs, ["curl", "-s", "--max-time", "20", "http://10.96.0.52/"]).catch(
        (e: { code: number }) => e,
      );
      expect((fromNode as { code: number }).code).toBe(7);
      const ping = await inNs(nodeNs, ["ping", "-c", "1", "-W", "5", "10.248.1.1"]);
      expect(ping.stdout).toContain("1 received");
    });
  },
);
