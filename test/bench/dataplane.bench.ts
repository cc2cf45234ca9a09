// Dataplane benchmark: pod-to-pod TCP throughput (iperf3, both directions) and round-trip time
// (ping) through klab's userspace node dataplane — two pods on one node, and two pods on two
// nodes joined by the VXLAN overlay — side by side with the kernel's own path: two namespaces
// joined by a plain veth pair. Prints the figures and the ratio klab / kernel.
// Each klab node runs on a worker thread of its own (an event loop each, as each node agent is
// a process of its own); pods' TUNs are opened by the node that owns them.
// Needs root, /dev/net/tun, ip, ping; iperf3 (else a node TCP sender is used).
// Run: npx tsx -e 'import("./test/bench/dataplane.bench.ts").then(m => m.default())'
import { execFile, spawn } from "node:child_process";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { randomBytes, randomInt } from "node:crypto";
import { promisify } from "node:util";
import { configureInterface, openTun, type TunDevice } from "@klab/tun";
import { NodeDataplane } from "@klab/dataplane";

const run = promisify(execFile);
const SECONDS = Number(process.env.DATAPLANE_BENCH_SECONDS ?? 5);
// flannel's default pod MTU (1500 - 50 of VXLAN), and the jumbo one a lab network of MTU 9000 allows.
const POD_MTUS = (process.env.DATAPLANE_BENCH_MTU ?? "1450,8950").split(",").map(Number);
const id = randomBytes(3).toString("hex");
const lo = `127.${randomInt(10, 250)}.${randomInt(0, 250)}`;

interface Figures {
  gbpsForward: number;
  gbpsReverse: number;
  rttMs: number;
}

const namespaces: string[] = [];

async function hasCommand(cmd: string): Promise<boolean> {
  try {
    await run("sh", ["-c", `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

async function netns(suffix: string): Promise<string> {
  const ns = `klabt-bench-${id}-${suffix}`;
  await run("ip", ["netns", "add", ns]);
  namespaces.push(ns);
  for (const k of ["all", "default"])
    await run("ip", ["netns", "exec", ns, "sysctl", "-qw", `net.ipv6.conf.${k}.disable_ipv6=1`]);
  await run("ip", ["-n", ns, "link", "set", "lo", "up"]);
  return ns;
}

async function podTun(ns: string, ip: string, mtu: number): Promise<TunDevice> {
  const tun = openTun("eth0", { netns: `/run/netns/${ns}` });
  await configureInterface({
    netns: ns,
    name: "eth0",
    cidr: `${ip}/24`,
    mtu,
    txqueuelen: 1000,
    routes: ["10.247.0.0/16"],
  });
  return tun;
}

interface NodeSpec {
  nodeName: string;
  nodeIP: string;
  podCIDR: string;
  overlay: boolean;
  remotes: { podCIDR: string; nodeIP: string }[];
  pods: { ns: string; ip: string }[];
  mtu: number;
}

/** A node's dataplane on a worker thread; resolves once its pods are attached. */
async function startNode(spec: NodeSpec): Promise<{ stop(): Promise<void> }> {
  // The worker loads this TypeScript file too, through tsx's loader registered in the worker.
  const entry = `import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  const worker = new Worker(entry, { eval: true, workerData: spec });
  await new Promise<void>((resolve, reject) => {
    worker.once("message", () => resolve());
    worker.once("error", reject);
  });
  return {
    async stop() {
      worker.postMessage("stop");
      await new Promise((r) => worker.once("exit", r));
    },
  };
}

async function nodeWorker(spec: NodeSpec): Promise<void> {
  const dp = new NodeDataplane({
    nodeName: spec.nodeName,
    nodeIP: spec.nodeIP,
    podCIDR: spec.podCIDR,
    overlay: spec.overlay ? {} : false,
    endEvents: false,
  });
  await dp.start();
  for (const r of spec.remotes) dp.addRemoteNode(r.podCIDR, r.nodeIP);
  for (const p of spec.pods) dp.attachPod(p.ip, await podTun(p.ns, p.ip, spec.mtu));
  parentPort!.once("message", async () => {
    await dp.stop();
    process.exit(0);
  });
  parentPort!.postMessage("ready");
}

if (!isMainThread && workerData) void nodeWorker(workerData as NodeSpec);

function inNs(ns: string, cmd: string[], timeout = (SECONDS + 30) * 1000) {
  return run("ip", ["netns", "exec", ns, ...cmd], { timeout, maxBuffer: 64 << 20 });
}

/** Gbit/s from client to server (or back with reverse), by iperf3 or a node TCP sender. */
async function throughput(
  clientNs: string,
  serverNs: string,
  serverIP: string,
  reverse: boolean,
): Promise<number> {
  const port = String(randomInt(20000, 30000));
  if (await hasCommand("iperf3")) {
    const server = spawn(
      "ip",
      ["netns", "exec", serverNs, "iperf3", "-s", "-1", "-B", serverIP, "-p", port],
      { stdio: "ignore" },
    );
    try {
      for (let i = 0; ; i++) {
        try {
          const { stdout } = await inNs(clientNs, [
            "iperf3",
            "-c",
            serverIP,
            "-p",
            port,
            "-t",
            String(SECONDS),
            "-J",
            ...(reverse ? ["-R"] : []),
          ]);
          const result = JSON.parse(stdout) as { end: { sum_received: { bits_per_second: number } } };
          return result.end.sum_received.bits_per_second / 1e9;
        } catch (err) {
          if (i > 40) throw err;
          await new Promise((r) => setTimeout(r, 100)); // the server is not listening yet
        }
      }
    } finally {
      server.kill();
    }
  }
  // Fallback: a node sender and receiver; the receiver reports bytes per second.
  const [sendNs, recvNs, recvIP] = reverse ? [serverNs, clientNs, "0.0.0.0"] : [clientNs, serverNs, serverIP];
  const receiverCode = `const n=require("net");let b=0,t0=0;n.createServer(s=>{t0=Date.now();s.on("data",d=>b+=d.length);s.on("end",()=>{console.log(b*8/((Date.now()-t0)/1000)/1e9);process.exit(0)})}).listen(${port},"${recvIP}",()=>console.log("ready"))`;
  const receiver = spawn("ip", ["netns", "exec", recvNs, process.execPath, "-e", receiverCode], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  receiver.stdout.on("data", (d: Buffer) => (out += d));
  while (!out.includes("ready")) await new Promise((r) => setTimeout(r, 50));
  const target = reverse
    ? (await run("ip", ["-n", recvNs, "-4", "-o", "addr", "show", "eth0"])).stdout.match(/inet ([\d.]+)/)![1]
    : serverIP;
  const senderCode = `const s=require("net").connect(${port},"${target}");const c=Buffer.alloc(65536);const end=Date.now()+${SECONDS * 1000};function w(){while(Date.now()<end){if(!s.write(c))return s.once("drain",w)}s.end()}s.on("connect",w)`;
  await inNs(sendNs, [process.execPath, "-e", senderCode]);
  await new Promise((r) => receiver.once("exit", r));
  return Number(out.split("\n")[1]);
}

async function rtt(clientNs: string, ip: string): Promise<number> {
  const { stdout } = await inNs(clientNs, ["ping", "-q", "-c", "200", "-i", "0.002", "-W", "2", ip]);
  const m = stdout.match(/= [\d.]+\/([\d.]+)\//);
  if (!m) throw new Error(`no rtt in ping output: ${stdout}`);
  return Number(m[1]);
}

async function measure(clientNs: string, serverNs: string, serverIP: string): Promise<Figures> {
  const rttMs = await rtt(clientNs, serverIP);
  const gbpsForward = await throughput(clientNs, serverNs, serverIP, false);
  const gbpsReverse = await throughput(clientNs, serverNs, serverIP, true);
  return { gbpsForward, gbpsReverse, rttMs };
}

async function kernelVeth(): Promise<Figures> {
  const a = await netns("ka");
  const b = await netns("kb");
  await run("ip", [
    "link",
    "add",
    `kv${id}a`,
    "netns",
    a,
    "type",
    "veth",
    "peer",
    "name",
    `kv${id}b`,
    "netns",
    b,
  ]);
  await run("ip", ["-n", a, "addr", "add", "10.247.9.1/24", "dev", `kv${id}a`]);
  await run("ip", ["-n", b, "addr", "add", "10.247.9.2/24", "dev", `kv${id}b`]);
  await run("ip", ["-n", a, "link", "set", `kv${id}a`, "up"]);
  await run("ip", ["-n", b, "link", "set", `kv${id}b`, "up"]);
  return measure(a, b, "10.247.9.2");
}

async function sameNode(mtu: number): Promise<Figures> {
  const a = await netns(`sa${mtu}`);
  const b = await netns(`sb${mtu}`);
  const node = await startNode({
    mtu,
    nodeName: "bench-1",
    nodeIP: `${lo}.3`,
    podCIDR: "10.247.1.0/24",
    overlay: false,
    remotes: [],
    pods: [
      { ns: a, ip: "10.247.1.5" },
      { ns: b, ip: "10.247.1.6" },
    ],
  });
  try {
    return await measure(a, b, "10.247.1.6");
  } finally {
    await node.stop();
  }
}

async function crossNode(mtu: number): Promise<Figures> {
  const a = await netns(`xa${mtu}`);
  const c = await netns(`xc${mtu}`);
  const [n1, n2] = await Promise.all([
    startNode({
      mtu,
      nodeName: "bench-1",
      nodeIP: `${lo}.3`,
      podCIDR: "10.247.1.0/24",
      overlay: true,
      remotes: [{ podCIDR: "10.247.2.0/24", nodeIP: `${lo}.4` }],
      pods: [{ ns: a, ip: "10.247.1.5" }],
    }),
    startNode({
      mtu,
      nodeName: "bench-2",
      nodeIP: `${lo}.4`,
      podCIDR: "10.247.2.0/24",
      overlay: true,
      remotes: [{ podCIDR: "10.247.1.0/24", nodeIP: `${lo}.3` }],
      pods: [{ ns: c, ip: "10.247.2.5" }],
    }),
  ]);
  try {
    return await measure(a, c, "10.247.2.5");
  } finally {
    await Promise.all([n1.stop(), n2.stop()]);
  }
}

export default async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log("dataplane bench: skipped (needs root for namespaces and TUN devices)");
    return;
  }
  const tool = (await hasCommand("iperf3")) ? "iperf3" : "node TCP sender (iperf3 not installed)";
  console.log(`dataplane bench: ${SECONDS}s per throughput run, ${tool}; kernel veth at MTU 1500`);
  try {
    const kernel = await kernelVeth();
    const rows: [string, Figures][] = [["kernel veth pair", kernel]];
    for (const mtu of POD_MTUS) {
      rows.push([`klab same node, MTU ${mtu}`, await sameNode(mtu)]);
      rows.push([`klab cross-node, MTU ${mtu}`, await crossNode(mtu)]);
    }
    const row = (name: string, f: Figures) =>
      `${name.padEnd(28)} ${f.gbpsForward.toFixed(3).padStart(9)} ${f.gbpsReverse.toFixed(3).padStart(9)} ${f.rttMs.toFixed(3).padStart(9)}`;
    console.log(
      `${"path".padEnd(28)} ${"Gbit/s →".padStart(9)} ${"Gbit/s ←".padStart(9)} ${"RTT ms".padStart(9)}`,
    );
    for (const [name, f] of rows) console.log(row(name, f));
    for (const [name, f] of rows.slice(1)) {
      console.log(
        `ratio ${name} / kernel: throughput ${(f.gbpsForward / kernel.gbpsForward).toFixed(3)}x → ${(f.gbpsReverse / kernel.gbpsReverse).toFixed(3)}x ←, RTT ${(f.rttMs / kernel.rttMs).toFixed(1)}x`,
      );
    }
  } finally {
    await Promise.allSettled(namespaces.map((ns) => run("ip", ["netns", "del", ns])));
  }
}
