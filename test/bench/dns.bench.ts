// DNS benchmark: dnsperf against klab's CoreDNS-compatible server and against Debian's dnsmasq
// serving the same records, side by side on loopback, one process each: cluster names (the
// kubernetes plugin against a hosts file in dnsmasq) and forwarded names (both forwarding to the
// same upstream, a third dnsmasq), cache off and on. Prints queries/s, latency, klab/dnsmasq, and
// each server's CPU time per query (steadier than queries/s on a shared machine).
// Run: npx tsx -e 'import("./test/bench/dns.bench.ts").then(m => m.default())'
import { spawn, type ChildProcess } from "node:child_process";
import dgram from "node:dgram";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { DnsServer } from "../../services/dns/src/server.ts";
import { StaticSource, namespace, service } from "../../services/dns/src/testing/cluster-fixture.ts";
import type { ClusterState } from "../../services/dns/src/kubernetes/cluster.ts";

const SECONDS = Number(process.env.DNS_BENCH_SECONDS ?? 5);
const NAMES = 200;

async function freePort(): Promise<number> {
  for (;;) {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    // dnsmasq needs the UDP port too.
    const free = await new Promise<boolean>((resolve) => {
      const u = dgram.createSocket("udp4");
      u.once("error", () => resolve(false));
      u.bind(port, "127.0.0.1", () => u.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function dnsmasq(args: string[]): Promise<ChildProcess> {
  const child = spawn(
    "dnsmasq",
    [
      "--keep-in-foreground",
      "--conf-file=/dev/null",
      "--no-resolv",
      "--no-hosts",
      "--listen-address=127.0.0.1",
      "--bind-interfaces",
      "--pid-file=",
      "--user=root",
      ...args,
    ],
    {
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  await new Promise((r) => setTimeout(r, 300));
  if (child.exitCode !== null) throw new Error(`dnsmasq failed to start: ${err}`);
  return child;
}

async function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null) return;
  c.kill("SIGTERM");
  await new Promise((r) => c.once("exit", r));
}

interface Result {
  qps: number;
  avgMs: number;
  lost: number;
  /** CPU time the server spent per answered query (user + system), in microseconds. */
  cpuUs: number;
}

/** CPU seconds (user + system) a process has used so far, from /proc (clock ticks of 10 ms). */
function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[11] and [12] are utime and stime (the 14th and 15th of the whole line)
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * Runs dnsperf; `cpu` reads the server's CPU seconds so far. On a shared machine queries/s
 * swing with the load of other processes; CPU time per query does much less, and its inverse is
 * the queries/s one core would give.
 */
async function dnsperf(port: number, queryFile: string, cpu: () => number): Promise<Result> {
  // A short warm-up first: JIT for klab, a filled cache for both.
  await run("dnsperf", ["-s", "127.0.0.1", "-p", String(port), "-d", queryFile, "-l", "1", "-q", "50"]);
  const cpu0 = cpu();
  const r = await run("dnsperf", [
    "-s",
    "127.0.0.1",
    "-p",
    String(port),
    "-d",
    queryFile,
    "-l",
    String(SECONDS),
    "-c",
    "1",
    "-T",
    "1",
    "-q",
    "200",
    "-t",
    "2",
  ]);
  const qps = /Queries per second:\s+([\d.]+)/.exec(r.stdout);
  const avg = /Average Latency \(s\):\s+([\d.]+)/.exec(r.stdout);
  const cpuSeconds = cpu() - cpu0;
  const lost = /Queries lost:\s+(\d+)/.exec(r.stdout);
  const completed = /Queries completed:\s+(\d+)/.exec(r.stdout);
  if (!qps || !avg || !completed) throw new Error(`dnsperf output not understood:\n${r.stdout}\n${r.stderr}`);
  return {
    qps: Number(qps[1]),
    avgMs: Number(avg[1]) * 1000,
    lost: Number(lost?.[1] ?? 0),
    cpuUs: (cpuSeconds * 1e6) / Math.max(1, Number(completed[1])),
  };
}

function clusterOf(n: number): ClusterState {
  return {
    namespaces: [namespace("default")],
    services: Array.from({ length: n }, (_, i) =>
      service("default", `svc-${i}`, {
        clusterIP: `10.96.${Math.floor(i / 250)}.${(i % 250) + 1}`,
        ports: [{ name: "http", port: 80 }],
      }),
    ),
    endpointSlices: [],
    pods: [],
  };
}

async function klab(corefile: string, dir: string): Promise<DnsServer> {
  const path = join(dir, `Corefile-${Math.random().toString(36).slice(2)}`);
  writeFileSync(path, corefile);
  const source = new StaticSource(clusterOf(NAMES));
  return DnsServer.start({
    corefilePath: path,
    defaultPort: 0,
    defaultHost: "127.0.0.1",
    logger: pino({ level: "silent" }),
    out: () => {},
    clusterSources: () => source,
  });
}

export default async function (): Promise<void> {
  for (const tool of ["dnsperf", "dnsmasq"]) {
    const r = await run("sh", ["-c", `command -v ${tool}`]);
    if (r.code !== 0)
      throw new Error(`the DNS benchmark needs '${tool}' (apt-get install dnsperf dnsmasq-base)`);
  }
  const dir = mkdtempSync(join(tmpdir(), "klab-dns-bench-"));
  const children: ChildProcess[] = [];
  try {
    // Same records for both servers.
    const clusterHosts = Array.from(
      { length: NAMES },
      (_, i) => `10.96.${Math.floor(i / 250)}.${(i % 250) + 1} svc-${i}.default.svc.cluster.local`,
    ).join("\n");
    const internetHosts = Array.from(
      { length: NAMES },
      (_, i) => `203.0.113.${(i % 250) + 1} host-${i}.example.com`,
    ).join("\n");
    writeFileSync(join(dir, "cluster.hosts"), `${clusterHosts}\n`);
    writeFileSync(join(dir, "internet.hosts"), `${internetHosts}\n`);
    const clusterQueries = join(dir, "cluster.queries");
    const forwardQueries = join(dir, "forward.queries");
    writeFileSync(
      clusterQueries,
      Array.from({ length: NAMES }, (_, i) => `svc-${i}.default.svc.cluster.local A`).join("\n") + "\n",
    );
    writeFileSync(
      forwardQueries,
      Array.from({ length: NAMES }, (_, i) => `host-${i}.example.com A`).join("\n") + "\n",
    );

    // The emulated internet's resolver both servers forward to.
    const upPort = await freePort();
    children.push(
      await dnsmasq([
        `--port=${upPort}`,
        `--addn-hosts=${join(dir, "internet.hosts")}`,
        "--cache-size=10000",
        "--local-ttl=300",
      ]),
    );

    const scenarios: { name: string; queries: string; klab: string; dnsmasq: string[] }[] = [
      {
        name: "cluster names, cache off",
        queries: clusterQueries,
        klab: `.:0 {\n bind 127.0.0.1\n kubernetes cluster.local {\n  ttl 30\n }\n}`,
        dnsmasq: [`--addn-hosts=${join(dir, "cluster.hosts")}`, "--cache-size=0", "--local-ttl=30"],
      },
      {
        name: "cluster names, cache on",
        queries: clusterQueries,
        klab: `.:0 {\n bind 127.0.0.1\n cache 30\n kubernetes cluster.local {\n  ttl 30\n }\n}`,
        dnsmasq: [`--addn-hosts=${join(dir, "cluster.hosts")}`, "--cache-size=10000", "--local-ttl=30"],
      },
      {
        name: "forwarded names, cache off",
        queries: forwardQueries,
        klab: `.:0 {\n bind 127.0.0.1\n forward . 127.0.0.1:${upPort}\n}`,
        dnsmasq: [`--server=127.0.0.1#${upPort}`, "--cache-size=0"],
      },
      {
        name: "forwarded names, cache on",
        queries: forwardQueries,
        klab: `.:0 {\n bind 127.0.0.1\n cache 30\n forward . 127.0.0.1:${upPort}\n}`,
        dnsmasq: [`--server=127.0.0.1#${upPort}`, "--cache-size=10000"],
      },
    ];

    console.log(
      `dns: dnsperf ${SECONDS}s per run, 1 client thread, 200 outstanding, ${NAMES} names; klab (node, 1 thread) vs dnsmasq (1 thread)`,
    );
    console.log(
      [
        "scenario".padEnd(28),
        "klab qps",
        "klab ms",
        "dnsmasq qps",
        "dnsmasq ms",
        "ratio",
        "klab us/q",
        "dnsmasq us/q",
        "cpu ratio",
        "klab qps/core",
      ].join("  "),
    );
    console.log(
      `load average before: ${loadavg()
        .map((x) => x.toFixed(2))
        .join(" ")}`,
    );
    for (const s of scenarios) {
      const server = await klab(s.klab, dir);
      let k: Result;
      try {
        k = await dnsperf(server.port(), s.queries, () => {
          const u = process.cpuUsage();
          return (u.user + u.system) / 1e6;
        });
      } finally {
        await server.stop();
      }
      const port = await freePort();
      const peer = await dnsmasq([`--port=${port}`, ...s.dnsmasq]);
      let d: Result;
      try {
        d = await dnsperf(port, s.queries, () => cpuSecondsOf(peer.pid!));
      } finally {
        await stopChild(peer);
      }
      console.log(
        [
          s.name.padEnd(28),
          k.qps.toFixed(0).padStart(8),
          k.avgMs.toFixed(3).padStart(7),
          d.qps.toFixed(0).padStart(11),
          d.avgMs.toFixed(3).padStart(10),
          (k.qps / d.qps).toFixed(2).padStart(5),
          k.cpuUs.toFixed(1).padStart(9),
          d.cpuUs.toFixed(1).padStart(12),
          // above 1: klab spends less CPU per query than dnsmasq
          (d.cpuUs / k.cpuUs).toFixed(2).padStart(9),
          (1e6 / k.cpuUs).toFixed(0).padStart(13),
        ].join("  ") + (k.lost || d.lost ? `   (lost: klab ${k.lost}, dnsmasq ${d.lost})` : ""),
      );
    }
    console.log(
      `load average after: ${loadavg()
        .map((x) => x.toFixed(2))
        .join(" ")}`,
    );
    console.log(
      "ratio: queries/s klab/dnsmasq; cpu ratio: dnsmasq's CPU per query / klab's (both single-threaded).",
    );
    console.log("CoreDNS's published anchor: ~16.8k QPS per core for cluster names (Scaling_CoreDNS.md).");
  } finally {
    for (const c of children) await stopChild(c);
    rmSync(dir, { recursive: true, force: true });
  }
}
