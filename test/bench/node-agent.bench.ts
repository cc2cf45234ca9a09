/**
 * Pod start on one node: from `create` to the pod's Ready condition, over 50 pods created at once
 * (agnhost netexec with a readiness probe, as a Deployment's pods would be), p50/p95/max.
 * Both pod networks are measured: the userspace dataplane (TUN) and the kernel bridge.
 */
import { KubeClient } from "@klab/client";
import type { Pod } from "@klab/api";
import { startApiServer } from "../support/apiserver.ts";
import { startNode } from "../e2e/node-agent-support.ts";
import { existsSync } from "node:fs";
import { loadavg } from "node:os";

const PODS = 50;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

const load = () => `load ${loadavg()[0].toFixed(2)}`;

/** The agent's "pod start phases" log lines for these pods: p50/p95 per phase. */
function phases(log: string, names: (n: string) => boolean): string {
  const per = new Map<string, number[]>();
  for (const line of log.split("\n")) {
    if (!line.includes('"pod start phases"')) continue;
    try {
      const o = JSON.parse(line) as { pod: string; phases: Record<string, number> };
      if (!names(o.pod.split("/")[1])) continue;
      for (const [k, v] of Object.entries(o.phases)) per.set(k, [...(per.get(k) ?? []), v]);
    } catch {
      /* not one of ours */
    }
  }
  return [...per].map(([k, v]) => `${k} ${pct(v, 50)}/${pct(v, 95)}`).join(", ");
}

async function run(podNetwork: "tun" | "bridge"): Promise<void> {
  const api = await startApiServer();
  const node = await startNode(api, `bench-${podNetwork}`, { podNetwork });
  const client = new KubeClient({ server: api.url, caPem: api.caPem, token: api.token });
  try {
    const created = new Map<string, number>();
    const ready = new Map<string, number>();
    const done = new Promise<void>((resolve) => {
      const w = client.watch<Pod>("v1", "pods", { namespace: "default" }, (ev) => {
        const name = ev.object.metadata.name!;
        if (ready.has(name) || !created.has(name)) return;
        if (ev.object.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")) {
          ready.set(name, Date.now());
          if (ready.size === PODS) {
            w.stop();
            resolve();
          }
        }
      });
    });
    await new Promise((r) => setTimeout(r, 300));
    await Promise.all(
      Array.from({ length: PODS }, (_, i) => {
        const name = `bench-${i}`;
        created.set(name, Date.now());
        return client.create<Pod>({
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name, namespace: "default" },
          spec: {
            containers: [
              {
                name: "web",
                image: "registry.k8s.io/e2e-test-images/agnhost:2.47",
                args: ["netexec", "--http-port=8080"],
                readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
              },
            ],
          },
        });
      }),
    );
    await Promise.race([
      done,
      new Promise((_, rej) => setTimeout(() => rej(new Error("pods not Ready within 180 s")), 180_000)),
    ]);
    const ms = [...ready.entries()].map(([n, t]) => t - created.get(n)!);
    console.log(
      `pod start (create → Ready), ${PODS} pods at once, ${podNetwork} network: p50 ${pct(ms, 50)} ms, p95 ${pct(ms, 95)} ms, max ${Math.max(...ms)} ms (${load()})`,
    );
    console.log(`  agent phases p50/p95 ms: ${phases(node.log(), (n) => n.startsWith("bench-"))}`);
    // one pod alone, on a quiet node
    const t0 = Date.now();
    await client.create<Pod>({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "solo", namespace: "default" },
      spec: {
        containers: [
          {
            name: "web",
            image: "registry.k8s.io/e2e-test-images/agnhost:2.47",
            args: ["netexec"],
            readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
          },
        ],
      },
    });
    for (;;) {
      const p = await client.get<Pod>("v1", "pods", "default", "solo");
      if (p?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    console.log(
      `pod start, one pod on a quiet node, ${podNetwork} network: ${Date.now() - t0} ms (${load()})`,
    );
    await new Promise((r) => setTimeout(r, 200));
    console.log(`  agent phases ms: ${phases(node.log(), (n) => n === "solo")}`);
  } finally {
    await client.close();
    await node.cleanup();
    await api.stop();
  }
}

export default async function (): Promise<void> {
  if (process.getuid?.() !== 0 || !existsSync("/dev/net/tun")) {
    console.log("skipped: needs root and /dev/net/tun");
    return;
  }
  // KLAB_BENCH_POD_NETWORK=tun|bridge measures one of them
  const only = process.env.KLAB_BENCH_POD_NETWORK;
  if (!only || only === "tun") await run("tun");
  if (!only || only === "bridge") await run("bridge");
}
