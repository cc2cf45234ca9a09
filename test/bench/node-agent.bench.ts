/**
 * Pod start on one node: from `create` to the pod's Ready condition, over 50 pods created at once
 * (agnhost netexec with a readiness probe, as a Deployment's pods would be), p50/p95/max.
 * Both pod networks are measured: the userspace dataplane (TUN) and the kernel bridge.
 * Before them, the container shim alone: what a silent container's start and exit cost, and how
 * many log lines a second a container can write through it and the CPU they cost
 * (KLAB_BENCH_SHIM=<path> measures another shim.sh, e.g. an older one, the same way).
 */
import { KubeClient } from "@klab/client";
import type { Pod } from "@klab/api";
import { startApiServer } from "../support/apiserver.ts";
import { startNode } from "../e2e/node-agent-support.ts";
import { execFileSync, spawn } from "node:child_process";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  rmdirSync,
  writeFileSync,
} from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

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

const SHIM =
  process.env.KLAB_BENCH_SHIM ??
  fileURLToPath(new URL("../../services/node-agent/src/runtime/shim.sh", import.meta.url));

/**
 * One container run through the shim, in a cgroup of its own from before the shim's first fork:
 * wall ms until the shim recorded the exit, CPU ms of the shim, its loggers and the container.
 */
async function shimRun(dir: string, argv: string[]): Promise<{ wallMs: number; cpuMs: number } | undefined> {
  mkdirSync(dir);
  // held on its stdin until the meter has it, so everything it starts is counted
  const child = spawn("sh", ["-c", 'read -r go; exec sh "$0" "$@"', SHIM, dir, "--", ...argv], {
    stdio: ["pipe", "ignore", "ignore"],
  });
  const cpu = CpuMeter.attach(child.pid!);
  if (!cpu) {
    child.kill("SIGKILL");
    return undefined;
  }
  try {
    const cpu0 = cpu.ms();
    const t0 = performance.now();
    child.stdin!.end("go\n");
    await new Promise((r) => child.once("exit", r));
    const wallMs = performance.now() - t0;
    if (!existsSync(join(dir, "exit"))) throw new Error(`shim left no exit file in ${dir}`);
    return { wallMs, cpuMs: cpu.ms() - cpu0 };
  } finally {
    cpu.remove();
  }
}

async function shim(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "klab-shim-bench-"));
  try {
    const STARTS = 40;
    let cpu = 0;
    for (let i = 0; i < STARTS; i++) {
      const r = await shimRun(join(root, `start-${i}`), ["true"]);
      if (!r) {
        console.log("shim: skipped (no cgroup cpuacct to measure CPU with)");
        return;
      }
      cpu += r.cpuMs;
    }
    console.log(
      `shim, a silent container (true) started and exited: ${(cpu / STARTS).toFixed(1)} ms CPU each (${STARTS} runs, ${load()})`,
    );
    // an access log line per request, as a busy ingress controller writes them, and some stderr
    const LINES = 20_000;
    const ERR = LINES / 10;
    const dir = join(root, "lines");
    const line = `10.244.1.1 - - [26/Nov/2026:22:00:00 +0000] "GET /api/v1/items/%g HTTP/1.1" 200 612 "-" "curl/8.5.0"`;
    const r = (await shimRun(dir, [
      "sh",
      "-c",
      `seq -f '${line}' ${LINES}; seq -f 'warning %g' ${ERR} >&2`,
    ]))!;
    const got = readFileSync(join(dir, "log"), "utf8").split("\n").length - 1;
    if (got !== LINES + ERR) throw new Error(`shim logged ${got} of ${LINES + ERR} lines`);
    console.log(
      `shim, ${got} log lines written as fast as they come: ${Math.round(got / (r.wallMs / 1000))} lines/s, ${((r.cpuMs * 1000) / got).toFixed(1)} ms CPU per 1,000 lines (${load()})`,
    );
    // the same lines at 1,000 a second (the writer outside the cgroup, the container a cat)
    const feed = join(root, "feed");
    execFileSync("mkfifo", [feed]);
    const paced = join(root, "paced");
    const RATE = 1000;
    const SECONDS = 3;
    const pacedRun = shimRun(paced, ["cat", feed]);
    const w = createWriteStream(feed);
    const text = `${line.replace("%g", "1")}\n`.repeat(RATE / 100);
    const t0 = performance.now();
    for (let tick = 1; tick <= SECONDS * 100; tick++) {
      w.write(text);
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + tick * 10 - performance.now())));
    }
    await new Promise<void>((r) => w.end(r));
    const closed = performance.now();
    const p = (await pacedRun)!;
    const lag = performance.now() - closed;
    const pacedLines = readFileSync(join(paced, "log"), "utf8").split("\n").length - 1;
    if (pacedLines !== RATE * SECONDS)
      throw new Error(`shim logged ${pacedLines} of ${RATE * SECONDS} lines`);
    console.log(
      `shim, ${RATE} log lines a second for ${SECONDS} s: ${((p.cpuMs / (SECONDS * 1000)) * 100).toFixed(1)} % of a core, all logged ${Math.round(lag)} ms after the writer stopped (${load()})`,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
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
  await shim();
  // KLAB_BENCH_POD_NETWORK=tun|bridge measures one of them, =none only the shim
  const only = process.env.KLAB_BENCH_POD_NETWORK;
  if (!only || only === "tun") await run("tun");
  if (!only || only === "bridge") await run("bridge");
}
