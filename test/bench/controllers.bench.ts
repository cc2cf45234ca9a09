// Controllers benchmark: the pure cores at cluster scale (ClusterIP/NodePort admission of
// 10,000 Services, EndpointSlices and Endpoints for 50,000 pods, scheduling 5,000 pods onto 100
// nodes) and, end to end through the real API server, how long a 300-replica Deployment takes
// to be created, scheduled and listed in Endpoints.
// Run: npx tsx -e 'import("./test/bench/controllers.bench.ts").then(m => m.default())'
import type { Node, Pod, Service } from "@klab/api";
import { ServiceAllocator } from "../../services/apiserver/src/allocators/service-allocation.ts";
import { desiredEndpoints } from "../../services/apiserver/src/controllers/endpoints/endpoints.ts";
import { planSlices } from "../../services/apiserver/src/controllers/endpoints/slices.ts";
import { schedule } from "../../services/apiserver/src/controllers/scheduler/schedule.ts";
import {
  eventually,
  fakeKubelets,
  nodeHeartbeats,
  registerNodes,
  startControlPlane,
} from "../e2e/controllers-harness.ts";

const fig = (label: string, value: string) => console.log(`  ${label.padEnd(52)} ${value}`);
const seconds = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e9;

function pod(i: number, node?: string): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: `web-${i}`,
      namespace: "default",
      uid: `u${i}`,
      labels: { app: "web" },
      ownerReferences: [
        { apiVersion: "apps/v1", kind: "ReplicaSet", name: "web", uid: "rs", controller: true },
      ],
    },
    spec: { nodeName: node, containers: [{ name: "c", ports: [{ name: "http", containerPort: 8080 }] }] },
    status: {
      phase: "Running",
      podIP: `10.${244 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
      conditions: [{ type: "Ready", status: i % 10 ? "True" : "False" }],
    },
  };
}

export default async function (): Promise<void> {
  console.log("controllers benchmark");

  const alloc = new ServiceAllocator({
    serviceCIDR: "10.96.0.0/12",
    nodePortRange: { base: 30000, size: 2768 },
  });
  let t = process.hrtime.bigint();
  for (let i = 0; i < 10_000; i++) {
    const s: Service = {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: `s${i}`, namespace: "default" },
      spec: { type: i % 5 ? "ClusterIP" : "NodePort", ports: [{ port: 80 }] },
    };
    if (alloc.admitCreate(s, { dryRun: false })) throw new Error("allocation failed");
  }
  let dt = seconds(t);
  fig(
    "admit 10,000 Services (2,000 NodePort)",
    `${(dt * 1000).toFixed(1)} ms  (${Math.round(10_000 / dt)} Services/s)`,
  );
  t = process.hrtime.bigint();
  alloc.repair([]);
  fig("repair pass over the /12 and the port range", `${(seconds(t) * 1000).toFixed(1)} ms`);

  const svc: Service = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "web", namespace: "default", uid: "svc" },
    spec: { selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: "http" }] },
  };
  const pods = Array.from({ length: 50_000 }, (_, i) => pod(i, `node-${i % 100}`));
  t = process.hrtime.bigint();
  const plan = planSlices(svc, pods, [], new Map());
  fig(
    "EndpointSlices for one Service of 50,000 pods",
    `${(seconds(t) * 1000).toFixed(0)} ms  (${plan.create.length} slices)`,
  );
  t = process.hrtime.bigint();
  const again = planSlices(
    svc,
    pods,
    plan.create.map((s, i) => ({
      ...s,
      metadata: { ...s.metadata, name: `web-${String(i).padStart(4, "0")}` },
    })),
    new Map(),
  );
  fig(
    "  re-plan with nothing changed",
    `${(seconds(t) * 1000).toFixed(0)} ms  (${again.update.length} updates)`,
  );
  t = process.hrtime.bigint();
  const ep = desiredEndpoints(svc, pods);
  fig(
    "Endpoints for the same (capped at 1000)",
    `${(seconds(t) * 1000).toFixed(0)} ms  (${ep.metadata.annotations?.["endpoints.kubernetes.io/over-capacity"]})`,
  );

  const nodes: Node[] = Array.from({ length: 100 }, (_, i) => ({
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: `node-${i}`, labels: {} },
    spec: {},
  }));
  const placed = new Map<string, Pod[]>();
  t = process.hrtime.bigint();
  for (let i = 0; i < 5_000; i++) {
    const p = pod(i);
    const r = schedule(p, nodes, placed);
    if (!("node" in r)) throw new Error(r.reasons);
    const l = placed.get(r.node);
    if (l) l.push(p);
    else placed.set(r.node, [p]);
  }
  dt = seconds(t);
  const sizes = [...placed.values()].map((l) => l.length);
  fig(
    "schedule 5,000 pods onto 100 nodes",
    `${(dt * 1000).toFixed(0)} ms  (${Math.round(5_000 / dt)} pods/s, ${Math.min(...sizes)}-${Math.max(...sizes)} per node)`,
  );

  const cp = await startControlPlane();
  const names = Array.from({ length: 10 }, (_, i) => `node-${i}`);
  await registerNodes(cp, names);
  const hb = nodeHeartbeats(cp, names, 10_000);
  const stopKubelets = fakeKubelets(cp);
  try {
    t = process.hrtime.bigint();
    await cp.k(["create", "deployment", "web", "--image=nginx", "--replicas=300"]);
    await cp.k(["expose", "deployment", "web", "--port=80"]);
    await eventually(
      "300 pods bound",
      async () =>
        (await cp.client.list<Pod>("v1", "pods", { namespace: "default" })).items.filter(
          (p) => p.spec?.nodeName,
        ).length === 300,
      300_000,
    );
    fig("300-replica Deployment: all pods created and bound", `${seconds(t).toFixed(2)} s`);
    await eventually(
      "300 endpoints",
      async () => {
        const e = await cp.client.get<{ subsets?: Array<{ addresses?: unknown[] }> }>(
          "v1",
          "endpoints",
          "default",
          "web",
        );
        return (e?.subsets ?? []).reduce((n, s) => n + (s.addresses?.length ?? 0), 0) === 300;
      },
      300_000,
    );
    fig("  ... and all 300 ready in Endpoints", `${seconds(t).toFixed(2)} s`);
  } finally {
    hb.stop();
    await stopKubelets();
    await cp.stop();
  }
}
