// NetworkPolicy benchmark: the cost of setting up a connection (the first packet's trip through
// the dataplane pipeline: parse, conntrack miss, policy verdict egress + ingress, conntrack
// commit, forward) with 0, 100 and 1,000 policies in the namespace, against the same pipeline
// with no policy stage at all. Two shapes: every policy selects the server and only the last
// rule allows the client (the verdict walks every rule: the worst case), and policies spread
// over 1,000 pods (the server is selected by one). Also the time to compile the policies.
// Run: npm run bench netpol
import type { Namespace, NetworkPolicy, Pod } from "@klab/api";
import { buildTCP, parseIP, Pipeline, TCP_SYN, type Output } from "@klab/dataplane";
import { compilePolicies, NetworkPolicyStage } from "@klab/dataplane/policy/index.ts";

const CONNECTIONS = Number(process.env.NETPOL_BENCH_CONNECTIONS ?? 20_000);
const SIZES = (process.env.NETPOL_BENCH_SIZES ?? "0,100,1000").split(",").map(Number);
const NS = "bench";
const CLIENT_IP = "10.244.1.2";
const SERVER_IP = "10.244.1.3";

function pod(name: string, ip: string, labels: Record<string, string>): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { namespace: NS, name, labels },
    spec: { containers: [{ name: "c", image: "nginx", ports: [{ containerPort: 80, name: "http" }] }] },
    status: { phase: "Running", podIP: ip },
  };
}

function policy(i: number, spec: NetworkPolicy["spec"]): NetworkPolicy {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { namespace: NS, name: `np-${i}` },
    spec,
  };
}

/** n policies that all select the server; only the last one's rule matches the client. */
function worstCase(n: number): { pods: Pod[]; policies: NetworkPolicy[] } {
  const pods = [
    pod("server", SERVER_IP, { app: "server" }),
    pod("client", CLIENT_IP, { client: `c-${n - 1}` }),
  ];
  const policies = Array.from({ length: n }, (_, i) =>
    policy(i, {
      podSelector: { matchLabels: { app: "server" } },
      ingress: [
        { from: [{ podSelector: { matchLabels: { client: `c-${i}` } } }], ports: [{ port: "http" }] },
      ],
    }),
  );
  return { pods, policies };
}

/** n policies over n pods; the server (app-0) is selected by one of them. */
function spread(n: number): { pods: Pod[]; policies: NetworkPolicy[] } {
  const pods = [pod("server", SERVER_IP, { app: "app-0" }), pod("client", CLIENT_IP, { role: "client" })];
  for (let i = 1; i < n; i++)
    pods.push(pod(`p-${i}`, `10.244.${2 + (i >> 8)}.${i & 255}`, { app: `app-${i}` }));
  const policies = Array.from({ length: n }, (_, i) =>
    policy(i, {
      podSelector: { matchLabels: { app: `app-${i}` } },
      ingress: [
        {
          from: [{ podSelector: { matchLabels: { role: "client" } } }],
          ports: [{ protocol: "TCP", port: 80 }],
        },
      ],
    }),
  );
  return { pods, policies };
}

const namespaces: Namespace[] = [{ apiVersion: "v1", kind: "Namespace", metadata: { name: NS } }];
const sink: Output = { toPod() {}, toHost() {}, toOverlay() {} };

/** Best of three runs: the first packet's cost is small enough for GC pauses to show. */
function measure(stage: NetworkPolicyStage | undefined): { ns: number; forwarded: number } {
  const runs = [measureOnce(stage), measureOnce(stage), measureOnce(stage)];
  return runs.reduce((a, b) => (b.ns < a.ns ? b : a));
}

/** Nanoseconds per new connection through a fresh pipeline. */
function measureOnce(stage: NetworkPolicyStage | undefined): { ns: number; forwarded: number } {
  const pipeline = new Pipeline({
    nodeName: "node-1",
    nodeIP: "172.29.0.3",
    podCIDR: "10.244.1.0/24",
    endEvents: false,
    conntrack: { max: CONNECTIONS * 2 + 10_000 },
  });
  pipeline.addPod(CLIENT_IP);
  pipeline.addPod(SERVER_IP);
  pipeline.policy = stage;
  const src = parseIP(CLIENT_IP);
  const dst = parseIP(SERVER_IP);
  const packets: Buffer[] = [];
  for (let i = 0; i < CONNECTIONS + 2000; i++) {
    packets.push(
      buildTCP({ src, dst, srcPort: 1024 + (i % 60000), dstPort: 80, seq: i, ack: 0, flags: TCP_SYN }),
    );
  }
  const ingress = { kind: "pod" as const, podIP: src };
  for (let i = 0; i < 2000; i++) pipeline.process(packets[i], ingress, sink); // warm-up
  const start = process.hrtime.bigint();
  for (let i = 2000; i < packets.length; i++) pipeline.process(packets[i], ingress, sink);
  const ns = Number(process.hrtime.bigint() - start) / (packets.length - 2000);
  return { ns, forwarded: pipeline.stats.newConnections.TCP ?? 0 };
}

export default async function (): Promise<void> {
  const base = measure(undefined);
  console.log(
    `connection setup through the pipeline, ${CONNECTIONS} new TCP connections each, pod to pod on one node`,
  );
  console.log(`  no policy stage                         ${(base.ns / 1000).toFixed(2)} µs/connection`);
  for (const [shape, build] of [
    ["every policy selects the server (worst case)", worstCase],
    ["policies spread over as many pods", spread],
  ] as const) {
    console.log(`${shape}:`);
    console.log("  policies  compile ms  µs/connection  ratio to no stage  connections forwarded");
    for (const n of SIZES) {
      const { pods, policies } = build(Math.max(n, 1));
      const used = policies.slice(0, n);
      const t0 = performance.now();
      const index = compilePolicies(used, pods, namespaces);
      const compileMs = performance.now() - t0;
      const stage = new NetworkPolicyStage();
      stage.load(index);
      const r = measure(stage);
      if (r.forwarded < CONNECTIONS)
        throw new Error(`only ${r.forwarded} of ${CONNECTIONS} connections were allowed`);
      console.log(
        `  ${String(n).padStart(8)}  ${compileMs.toFixed(2).padStart(10)}  ${(r.ns / 1000).toFixed(2).padStart(13)}  ${(r.ns / base.ns).toFixed(2).padStart(17)}x  ${String(r.forwarded).padStart(21)}`,
      );
    }
  }
}
