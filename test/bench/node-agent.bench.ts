/**
 * Pod start on one node: from `create` to the pod's Ready condition, over 50 pods created at once
 * (agnhost netexec with a readiness probe, as a Deployment's pods would be), p50/p95/max.
 * Both pod networks are measured: the userspace dataplane (TUN) and the kernel bridge.
 */
import { KubeClient } from "@klab/client";
import type { Pod } from "@klab/api";
import { startApiServer } from "../support/apiserver.ts";
import { startNode } from "../e2e/node-agent-support.ts";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";

const PODS = 50;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

const load = () => `load ${loadavg()[0].toFixed(2)}`;

/** utime + stime of one process (not its children), in ms. */
function ownCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
}

/**
 * CPU time of the agent and everything it starts (sandboxes, shims, containers, probes), from a
 * cgroup of its own: a figure other load on the machine does not change, unlike wall time.
 */
class CpuMeter {
  private constructor(
    private readonly dir: string,
    private readonly read: () => number,
  ) {}
  static attach(pid: number): CpuMeter | undefined {
    const name = `klab-bench-${process.pid}-${pid}`;
    const tries: Array<[string, (d: string) => number]> = [
      // cgroup v1 cpuacct: nanoseconds
      ["/sys/fs/cgroup/cpuacct", (d) => Number(readFileSync(`${d}/cpuacct.usage`, "utf8")) / 1e6],
      // cgroup v2: usage_usec in cpu.stat
      [
        "/sys/fs/cgroup",
        (d) => Number(/usage_usec (\d+)/.exec(readFileSync(`${d}/cpu.stat`, "utf8"))![1]) / 1e3,
      ],
    ];
    for (const [root, read] of tries) {
      const dir = `${root}/${name}`;
      try {
        mkdirSync(dir);
        writeFileSync(`${dir}/cgroup.procs`, String(pid));
        read(dir);
        return new CpuMeter(dir, () => read(dir));
      } catch {
        try {
          rmdirSync(dir);
        } catch {
          /* not made */
        }
      }
    }
    return undefined;
  }
  ms(): number {
    return this.read();
  }
  remove(): void {
    try {
      rmdirSync(this.dir);
    } catch {
      /* processes still in it */
    }
  }
}

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
  const cpu = CpuMeter.attach(node.child.pid!);
  try {
    const cpu0 = cpu?.ms() ?? 0;
    const own0 = ownCpuMs(node.child.pid!);
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
    if (cpu)
      console.log(
        `  CPU until all were Ready, per pod: ${Math.round((cpu.ms() - cpu0) / PODS)} ms (the agent process itself ${Math.round((ownCpuMs(node.child.pid!) - own0) / PODS)} ms, the rest its sandboxes, shims, containers and probes)`,
      );
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
    // the agent logs the phases once its status write returns, which may be after we saw Ready
    for (let i = 0; i < 100 && !phases(node.log(), (n) => n === "solo"); i++)
      await new Promise((r) => setTimeout(r, 100));
    console.log(`  agent phases ms: ${phases(node.log(), (n) => n === "solo")}`);
  } finally {
    await client.close();
    await node.cleanup();
    cpu?.remove();
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
