// apiserver benchmark: 10,000 Services with ClusterIP allocation, 50,000 endpoints in 1,000
// EndpointSlices, list latency (JSON and Table), watch fan-out to 100 watchers, and the server's RSS.
// Run: npx tsx -e 'import("./test/bench/apiserver.bench.ts").then(m => m.default())'
import { readFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { startApiServer } from "../support/apiserver.ts";

const SERVICES = 10_000;
const SLICES = 1_000;
const ENDPOINTS_PER_SLICE = 50;
const WATCHERS = 100;
const WATCH_EVENTS = 1_000;
const CONCURRENCY = 32;

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

export default async function (): Promise<void> {
  const api = await startApiServer();
  const agent = new Agent({ ca: api.caPem, keepAlive: true, maxSockets: CONCURRENCY * 2 });
  const send = (method: string, path: string, body?: unknown, accept = "application/json") =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const headers: Record<string, string | number> = { authorization: `Bearer ${api.token}`, accept };
      if (data)
        Object.assign(headers, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(data),
        });
      const req = request(`${api.url}${path}`, { method, agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      });
      req.on("error", reject);
      req.end(data);
    });
  const pool = async (n: number, one: (i: number) => Promise<void>) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = next++; i < n; i = next++) await one(i);
      }),
    );
  };
  const time = async (f: () => Promise<void>) => {
    const t = process.hrtime.bigint();
    await f();
    return Number(process.hrtime.bigint() - t) / 1e9;
  };
  const fig = (label: string, value: string) => console.log(`  ${label.padEnd(44)} ${value}`);

  try {
    console.log("apiserver benchmark");
    fig("RSS at start", `${rssMiB(api.pid()).toFixed(0)} MiB`);
    await send("POST", "/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "bench" },
    });

    const ips = new Set<string>();
    const tSvc = await time(() =>
      pool(SERVICES, async (i) => {
        const r = await send("POST", "/api/v1/namespaces/bench/services", {
          apiVersion: "v1",
          kind: "Service",
          metadata: { name: `svc-${i}`, labels: { bench: "yes" } },
          spec: { selector: { app: `app-${i}` }, ports: [{ port: 80, targetPort: 8080 }] },
        });
        if (r.status !== 201) throw new Error(`create service ${i}: ${r.status} ${r.body}`);
        ips.add(JSON.parse(r.body).spec.clusterIP);
      }),
    );
    if (ips.size !== SERVICES) throw new Error(`expected ${SERVICES} distinct ClusterIPs, got ${ips.size}`);
    fig(
      `create ${SERVICES} Services (ClusterIP allocated)`,
      `${tSvc.toFixed(1)} s, ${(SERVICES / tSvc).toFixed(0)}/s`,
    );

    const tSlices = await time(() =>
      pool(SLICES, async (i) => {
        const endpoints = Array.from({ length: ENDPOINTS_PER_SLICE }, (_, j) => ({
          addresses: [`10.${100 + (i >> 8)}.${i & 255}.${j + 1}`],
          conditions: { ready: true },
        }));
        const r = await send("POST", "/apis/discovery.k8s.io/v1/namespaces/bench/endpointslices", {
          apiVersion: "discovery.k8s.io/v1",
          kind: "EndpointSlice",
          metadata: { name: `svc-${i}-bench`, labels: { "kubernetes.io/service-name": `svc-${i}` } },
          addressType: "IPv4",
          endpoints,
          ports: [{ name: "", port: 8080, protocol: "TCP" }],
        });
        if (r.status !== 201) throw new Error(`create slice ${i}: ${r.status} ${r.body}`);
      }),
    );
    const eps = SLICES * ENDPOINTS_PER_SLICE;
    fig(
      `create ${eps} endpoints in ${SLICES} EndpointSlices`,
      `${tSlices.toFixed(1)} s, ${(eps / tSlices).toFixed(0)} endpoints/s`,
    );
    fig("RSS after the writes", `${rssMiB(api.pid()).toFixed(0)} MiB`);

    const lists = async (path: string, accept: string, n: number) => {
      const times: number[] = [];
      let bytes = 0;
      for (let i = 0; i < n; i++) {
        times.push(
          await time(async () => {
            const r = await send("GET", path, undefined, accept);
            bytes = r.body.length;
          }),
        );
      }
      times.sort((a, b) => a - b);
      return { p50: times[Math.floor(n / 2)]! * 1000, max: times[n - 1]! * 1000, mb: bytes / 1e6 };
    };
    let l = await lists("/api/v1/namespaces/bench/services", "application/json", 10);
    fig(
      `list ${SERVICES} Services (JSON, ${l.mb.toFixed(1)} MB)`,
      `p50 ${l.p50.toFixed(0)} ms, max ${l.max.toFixed(0)} ms`,
    );
    const table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    l = await lists("/api/v1/namespaces/bench/services", table, 10);
    fig(
      `list ${SERVICES} Services (Table, ${l.mb.toFixed(1)} MB)`,
      `p50 ${l.p50.toFixed(0)} ms, max ${l.max.toFixed(0)} ms`,
    );
    l = await lists("/api/v1/namespaces/bench/services?limit=500", "application/json", 20);
    fig("list 500 Services (one page)", `p50 ${l.p50.toFixed(1)} ms, max ${l.max.toFixed(1)} ms`);
    l = await lists("/apis/discovery.k8s.io/v1/namespaces/bench/endpointslices", "application/json", 10);
    fig(
      `list ${SLICES} EndpointSlices (${l.mb.toFixed(1)} MB)`,
      `p50 ${l.p50.toFixed(0)} ms, max ${l.max.toFixed(0)} ms`,
    );
    l = await lists(
      "/api/v1/namespaces/bench/services?labelSelector=bench%3Dyes&fieldSelector=metadata.name%3Dsvc-42",
      "application/json",
      20,
    );
    fig(
      "list with label+field selectors (1 match)",
      `p50 ${l.p50.toFixed(1)} ms, max ${l.max.toFixed(1)} ms`,
    );

    // Watch fan-out: WATCHERS streams on one resource, WATCH_EVENTS writes, every event to every watcher.
    const rv = JSON.parse((await send("GET", "/api/v1/namespaces/bench/configmaps?limit=1")).body).metadata
      .resourceVersion;
    const watchAgent = new Agent({ ca: api.caPem, keepAlive: false, maxSockets: WATCHERS + 1 });
    let received = 0;
    const reqs = Array.from({ length: WATCHERS }, () => {
      const req = request(
        `${api.url}/api/v1/namespaces/bench/configmaps?watch=true&resourceVersion=${rv}`,
        { agent: watchAgent, headers: { authorization: `Bearer ${api.token}` } },
        (res) => {
          let buf = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => {
            buf += d;
            let nl: number;
            while ((nl = buf.indexOf("\n")) >= 0) {
              received++;
              buf = buf.slice(nl + 1);
            }
          });
        },
      );
      req.on("error", () => {});
      req.end();
      return req;
    });
    await new Promise((r) => setTimeout(r, 1000));
    const expected = WATCHERS * WATCH_EVENTS;
    const tWatch = await time(async () => {
      await pool(WATCH_EVENTS, async (i) => {
        const r = await send("POST", "/api/v1/namespaces/bench/configmaps", {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: `cm-${i}` },
          data: { i: String(i) },
        });
        if (r.status !== 201) throw new Error(`create configmap: ${r.status}`);
      });
      const end = Date.now() + 60_000;
      while (received < expected && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    });
    for (const r of reqs) r.destroy();
    watchAgent.destroy();
    fig(
      `watch fan-out: ${WATCH_EVENTS} writes × ${WATCHERS} watchers`,
      `${received}/${expected} events in ${tWatch.toFixed(2)} s, ${(received / tWatch).toFixed(0)} events/s`,
    );
    fig("RSS at the end", `${rssMiB(api.pid()).toFixed(0)} MiB`);
  } finally {
    agent.destroy();
    await api.stop();
  }
}
