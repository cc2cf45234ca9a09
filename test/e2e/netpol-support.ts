/**
 * A small real cluster for NetworkPolicy e2e: the real API server (policies applied with the real
 * kubectl), two NodeDataplanes joined by the VXLAN overlay, each with a PolicyController +
 * NetworkPolicyStage, and pods that are network namespaces with a TUN eth0 attached to their
 * node. Each pod runs one Node.js process inside its namespace that serves TCP and UDP echo on
 * its ports and, on request, opens connections from the pod (the prober, as agnhost connect).
 * Pod objects are created in the API with their IPs in status, so the controllers compile from
 * real API objects.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import type { Pod } from "@klab/api";
import { KubeClient } from "@klab/client";
import { NodeDataplane } from "@klab/dataplane";
import { NetworkPolicyStage } from "@klab/dataplane/policy/index.ts";
import { PolicyController } from "@klab/dataplane/policy/controller.ts";
import { configureInterface, openTun } from "@klab/tun";
import { startApiServer, type TestApiServer } from "../support/apiserver.ts";

const run = promisify(execFile);

/** node-1's address on its lab0, where its own processes live ("node/node-1" in probes). */
export const NODE_HOST_IP = "10.249.0.3";

export interface PodSpec {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  /** Ports served over both TCP and UDP; names become the container's named ports. */
  ports: { port: number; protocol: "TCP" | "UDP"; name?: string }[];
  /** 0 or 1: which node the pod runs on. */
  node: number;
}

export interface ProbeResult {
  ok: boolean;
  /** "timeout" for a silent drop, an errno code (ECONNREFUSED…) otherwise. */
  error?: string;
}

/** The process every pod runs: echo servers plus a line-oriented prober on stdin/stdout. */
const POD_PROGRAM = String.raw`
const net = require("net"), dgram = require("dgram"), readline = require("readline");
const ports = JSON.parse(process.argv[1]);
const held = new Map();
let pending = ports.length;
const ready = () => { if (--pending === 0) console.log(JSON.stringify({ ready: true })); };
for (const p of ports) {
  if (p.protocol === "TCP") {
    net.createServer((s) => { s.on("error", () => {}); s.pipe(s); }).listen(p.port, "0.0.0.0", ready);
  } else {
    const u = dgram.createSocket("udp4");
    u.on("message", (m, r) => u.send(m, r.port, r.address));
    u.bind(p.port, "0.0.0.0", ready);
  }
}
const reply = (o) => process.stdout.write(JSON.stringify(o) + "\n");
function tcp(c) {
  const s = net.connect({ host: c.ip, port: c.port });
  let done = false;
  const finish = (r) => { if (done) return; done = true; clearTimeout(t); if (!c.hold) s.destroy(); reply({ id: c.id, ...r }); };
  const t = setTimeout(() => finish({ ok: false, error: "timeout" }), c.timeoutMs);
  s.on("connect", () => { if (c.hold) held.set(c.hold, s); finish({ ok: true }); });
  s.on("error", (e) => finish({ ok: false, error: e.code || e.message }));
}
function udp(c) {
  const u = dgram.createSocket("udp4");
  let done = false;
  const finish = (r) => { if (done) return; done = true; clearTimeout(t); u.close(); reply({ id: c.id, ...r }); };
  const t = setTimeout(() => finish({ ok: false, error: "timeout" }), c.timeoutMs);
  u.on("message", () => finish({ ok: true }));
  u.on("error", (e) => finish({ ok: false, error: e.code || e.message }));
  u.send("probe", c.port, c.ip);
}
function echo(c) {
  const s = held.get(c.hold);
  if (!s) return reply({ id: c.id, ok: false, error: "no such held connection" });
  const t = setTimeout(() => { s.removeAllListeners("data"); reply({ id: c.id, ok: false, error: "timeout" }); }, c.timeoutMs);
  s.once("data", () => { clearTimeout(t); reply({ id: c.id, ok: true }); });
  s.write("ping");
}
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const c = JSON.parse(line);
  if (c.op === "echo") echo(c);
  else if (c.protocol === "UDP") udp(c);
  else tcp(c);
});
`;

class PodProcess {
  private next = 1;
  private readonly waiting = new Map<number, (r: ProbeResult) => void>();
  private onReady: () => void = () => {};
  readonly ready: Promise<void>;

  constructor(readonly child: ChildProcess) {
    const lines = createInterface({ input: child.stdout! });
    this.ready = new Promise((res, rej) => {
      this.onReady = res;
      child.once("exit", (code) => rej(new Error(`pod process exited (${code})`)));
    });
    lines.on("line", (line) => {
      const msg = JSON.parse(line) as { ready?: boolean; id?: number } & ProbeResult;
      if (msg.ready) this.onReady();
      else if (msg.id !== undefined) {
        this.waiting.get(msg.id)?.(msg);
        this.waiting.delete(msg.id);
      }
    });
  }

  /** A process serving no ports never prints ready. */
  readyNow(): void {
    this.onReady();
  }

  request(cmd: Record<string, unknown>): Promise<ProbeResult> {
    const id = this.next++;
    return new Promise((res) => {
      this.waiting.set(id, res);
      this.child.stdin!.write(JSON.stringify({ ...cmd, id }) + "\n");
    });
  }
}

export interface RunningPod extends PodSpec {
  ip: string;
  netns: string;
  proc: PodProcess;
}

export interface NetpolCluster {
  api: TestApiServer;
  client: KubeClient;
  nodes: NodeDataplane[];
  controllers: PolicyController[];
  pods: Map<string, RunningPod>;
  /** `kubectl apply -f -` of YAML; throws with kubectl's stderr if it fails. */
  apply(yaml: string): Promise<void>;
  /** Deletes every NetworkPolicy of the given namespaces and waits until the nodes have none. */
  resetPolicies(): Promise<void>;
  /** Resolves once every node's controller has compiled the API's current policies. */
  waitForPolicies(): Promise<void>;
  probe(
    from: string,
    to: string,
    port: number,
    protocol: "TCP" | "UDP",
    timeoutMs?: number,
  ): Promise<ProbeResult>;
  /** Probes an address (a Service IP) rather than a pod. */
  probeAddress(
    from: string,
    ip: string,
    port: number,
    protocol: "TCP" | "UDP",
    timeoutMs?: number,
  ): Promise<ProbeResult>;
  /** Opens a TCP connection from `from` to `to:port` and keeps it under `handle`. */
  hold(from: string, to: string, port: number, handle: string): Promise<ProbeResult>;
  /** Sends a few bytes over a held connection and waits for the echo. */
  echo(from: string, handle: string, timeoutMs?: number): Promise<ProbeResult>;
  close(): Promise<void>;
}

export async function startNetpolCluster(specs: PodSpec[], tag: string): Promise<NetpolCluster> {
  const id = `${tag}-${randomBytes(2).toString("hex")}`;
  const lo = `127.${randomInt(10, 250)}.${randomInt(0, 250)}`;
  const nodeIPs = [`${lo}.3`, `${lo}.4`];
  const podCIDRs = ["10.244.1.0/24", "10.244.2.0/24"];
  const netnses: string[] = [];
  const children: ChildProcess[] = [];
  const nodes: NodeDataplane[] = [];
  const controllers: PolicyController[] = [];
  let api: TestApiServer | undefined;
  let client: KubeClient | undefined;

  const close = async () => {
    for (const c of controllers) c.stop();
    for (const c of children) c.kill("SIGKILL");
    await Promise.allSettled(nodes.map((n) => n.stop()));
    await Promise.allSettled(netnses.map((ns) => run("ip", ["netns", "del", ns])));
    await client?.close();
    await api?.stop();
  };

  try {
    api = await startApiServer();
    client = KubeClient.fromKubeconfig(api.kubeconfig);
    for (let i = 0; i < 2; i++) {
      const node = new NodeDataplane({
        nodeName: `node-${i + 1}`,
        nodeIP: nodeIPs[i],
        podCIDR: podCIDRs[i],
      });
      nodes.push(node);
      await node.start();
      await client.create({
        apiVersion: "v1",
        kind: "Node",
        metadata: { name: `node-${i + 1}` },
        spec: { podCIDR: podCIDRs[i] },
      });
    }
    nodes[0].addRemoteNode(podCIDRs[1], nodeIPs[1]);
    nodes[1].addRemoteNode(podCIDRs[0], nodeIPs[0]);
    for (const ns of new Set(specs.map((s) => s.namespace))) {
      const r = await api.kubectl(["create", "namespace", ns]);
      if (r.code !== 0 && !r.stderr.includes("AlreadyExists")) throw new Error(r.stderr);
    }
    const pods = new Map<string, RunningPod>();
    const hostCount = [10, 10];
    for (const spec of specs) {
      const ip = `10.244.${spec.node + 1}.${hostCount[spec.node]++}`;
      const netns = `klabt-np-${id}-${spec.namespace}-${spec.name}`.slice(0, 60);
      await run("ip", ["netns", "add", netns]);
      netnses.push(netns);
      for (const k of ["all", "default"])
        await run("ip", ["netns", "exec", netns, "sysctl", "-qw", `net.ipv6.conf.${k}.disable_ipv6=1`]);
      await run("ip", ["-n", netns, "link", "set", "lo", "up"]);
      const tun = openTun("eth0", { netns: `/run/netns/${netns}` });
      // Only the lab's pod range is routed: nothing can leave for the host's networks.
      await configureInterface({
        netns,
        name: "eth0",
        cidr: `${ip}/24`,
        mtu: 1450,
        routes: ["10.244.0.0/16", "10.96.0.0/12", "10.249.0.0/16"],
      });
      nodes[spec.node].attachPod(ip, tun);
      const ports = spec.ports.map(({ port, protocol }) => ({ port, protocol }));
      const child = spawn(
        "ip",
        ["netns", "exec", netns, process.execPath, "-e", POD_PROGRAM, JSON.stringify(ports)],
        {
          stdio: ["pipe", "pipe", "inherit"],
        },
      );
      children.push(child);
      const proc = new PodProcess(child);
      const pod: Pod = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { namespace: spec.namespace, name: spec.name, labels: spec.labels },
        spec: {
          nodeName: `node-${spec.node + 1}`,
          containers: [
            {
              name: "cont",
              image: "registry.k8s.io/e2e-test-images/agnhost:2.53",
              ports: spec.ports.map((p) => ({ containerPort: p.port, protocol: p.protocol, name: p.name })),
            },
          ],
          tolerations: [{ operator: "Exists", effect: "NoExecute" }],
        },
      };
      const created = await client.create(pod);
      await client.updateStatus({
        ...created,
        status: { phase: "Running", podIP: ip, podIPs: [{ ip }], hostIP: nodeIPs[spec.node] },
      });
      await proc.ready;
      pods.set(`${spec.namespace}/${spec.name}`, { ...spec, ip, netns, proc });
    }
    {
      // node-1's own network namespace: its processes (kubelet probes) reach pods through lab0.
      const netns = `klabt-np-${id}-node-1`;
      await run("ip", ["netns", "add", netns]);
      netnses.push(netns);
      for (const k of ["all", "default"])
        await run("ip", ["netns", "exec", netns, "sysctl", "-qw", `net.ipv6.conf.${k}.disable_ipv6=1`]);
      await run("ip", ["-n", netns, "link", "set", "lo", "up"]);
      const lab0 = openTun("lab0", { netns: `/run/netns/${netns}` });
      await configureInterface({
        netns,
        name: "lab0",
        cidr: `${NODE_HOST_IP}/32`,
        mtu: 1450,
        routes: ["10.244.0.0/16", "10.96.0.0/12"],
      });
      nodes[0].attachHost(lab0);
      const child = spawn("ip", ["netns", "exec", netns, process.execPath, "-e", POD_PROGRAM, "[]"], {
        stdio: ["pipe", "pipe", "inherit"],
      });
      children.push(child);
      const proc = new PodProcess(child);
      proc.readyNow();
      pods.set("node/node-1", {
        namespace: "",
        name: "node-1",
        labels: {},
        ports: [],
        node: 0,
        ip: NODE_HOST_IP,
        netns,
        proc,
      });
    }
    for (const node of nodes) {
      const stage = new NetworkPolicyStage();
      const controller = new PolicyController({ client, stage });
      controllers.push(controller);
      await controller.start();
      node.setPolicy(stage);
    }

    const c = client;
    const a = api;
    const versions = async () => {
      const list = await c.list<{ metadata: { namespace: string; name: string; resourceVersion: string } }>(
        "networking.k8s.io/v1",
        "networkpolicies",
      );
      return list.items
        .map((p) => `${p.metadata.namespace}/${p.metadata.name}@${p.metadata.resourceVersion}`)
        .sort();
    };
    const waitForPolicies = async () => {
      const want = (await versions()).join(",");
      const end = Date.now() + 10_000;
      while (!controllers.every((ctl) => ctl.loadedPolicies().join(",") === want)) {
        if (Date.now() > end) throw new Error(`the policy controllers did not load ${want}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const pod = (key: string) => {
      const p = pods.get(key);
      if (!p) throw new Error(`no pod ${key}`);
      return p;
    };
    return {
      api: a,
      client: c,
      nodes,
      controllers,
      pods,
      async apply(yaml) {
        const r = await a.kubectl(["apply", "-f", "-"], { input: yaml });
        if (r.code !== 0) throw new Error(`kubectl apply failed: ${r.stderr}`);
      },
      async resetPolicies() {
        const r = await a.kubectl(["delete", "networkpolicies", "--all", "-A", "--wait=false"]);
        if (r.code !== 0) throw new Error(r.stderr);
        await waitForPolicies();
      },
      waitForPolicies,
      probe(from, to, port, protocol, timeoutMs = 1000) {
        return pod(from).proc.request({ ip: pod(to).ip, port, protocol, timeoutMs });
      },
      probeAddress(from, ip, port, protocol, timeoutMs = 1000) {
        return pod(from).proc.request({ ip, port, protocol, timeoutMs });
      },
      hold(from, to, port, handle) {
        return pod(from).proc.request({
          ip: pod(to).ip,
          port,
          protocol: "TCP",
          timeoutMs: 2000,
          hold: handle,
        });
      },
      echo(from, handle, timeoutMs = 2000) {
        return pod(from).proc.request({ op: "echo", hold: handle, timeoutMs });
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Expected reachability between pods, built the way the upstream e2e's Reachability is. */
export class Reachability {
  private readonly m = new Map<string, boolean>();
  constructor(
    readonly pods: string[],
    all: boolean,
  ) {
    for (const f of pods) for (const t of pods) this.m.set(`${f}>${t}`, all);
  }
  private matches(sel: string, pod: string): boolean {
    if (sel === "*") return true;
    if (sel.endsWith("/*")) return pod.startsWith(sel.slice(0, -1));
    return sel === pod;
  }
  /** Sets every pair whose source matches `from` and destination matches `to` ("x/a", "x/*", "*"). */
  expect(from: string, to: string, allowed: boolean): this {
    for (const f of this.pods)
      for (const t of this.pods)
        if (this.matches(from, f) && this.matches(to, t)) this.m.set(`${f}>${t}`, allowed);
    return this;
  }
  get(from: string, to: string): boolean {
    return this.m.get(`${from}>${to}`)!;
  }
}

/** Probes every ordered pair (the diagonal is loopback inside the pod, as upstream ignores it) in parallel. */
export async function probeMatrix(
  cluster: NetpolCluster,
  port: number,
  protocol: "TCP" | "UDP",
  expected: Reachability,
): Promise<{ wrong: string[]; table: string; results: Map<string, ProbeResult> }> {
  const pods = expected.pods;
  const results = new Map<string, ProbeResult>();
  await Promise.all(
    pods.flatMap((f) =>
      pods
        .filter((t) => t !== f)
        .map(async (t) => results.set(`${f}>${t}`, await cluster.probe(f, t, port, protocol))),
    ),
  );
  const wrong: string[] = [];
  const rows = [["", ...pods].join("\t")];
  for (const f of pods) {
    const cells = [f];
    for (const t of pods) {
      if (f === t) {
        cells.push("-");
        continue;
      }
      const r = results.get(`${f}>${t}`)!;
      const want = expected.get(f, t);
      cells.push(r.ok === want ? (r.ok ? "." : "X") : r.ok ? "!." : "!X");
      if (r.ok !== want)
        wrong.push(
          `${f} -> ${t} ${protocol}/${port}: expected ${want ? "allowed" : "denied"}, got ${r.ok ? "connected" : r.error}`,
        );
    }
    rows.push(cells.join("\t"));
  }
  return {
    wrong,
    table: `${protocol}/${port} (. connected, X blocked, ! unexpected)\n${rows.join("\n")}`,
    results,
  };
}
