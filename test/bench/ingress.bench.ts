// ingress benchmark: wrk through the klab ingress controller and through Debian's nginx configured
// as a reverse proxy to the same upstream (a separate nginx answering "ok"), one worker each,
// on loopback. HTTP keep-alive, HTTPS keep-alive, and full TLS handshakes (a new connection per
// request): requests/s and p99, and the ratios klab / nginx.
// Run: npx tsx -e 'import("./test/bench/ingress.bench.ts").then(m => m.default())'
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { buildRoutes } from "../../services/ingress/src/build.ts";
import { selfSigned } from "../../services/ingress/src/certificates.ts";
import {
  controllerConfig,
  endpointSlice,
  ingress,
  ingressClass,
  service,
  tlsSecret,
} from "../../services/ingress/src/fixtures.ts";
import { IngressMetrics } from "../../services/ingress/src/http/metrics.ts";
import { IngressServer } from "../../services/ingress/src/http/server.ts";

const DURATION = Number(process.env.INGRESS_BENCH_SECONDS ?? 8);
const CONNECTIONS = 50;
const HOST = "bench.local";

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

async function waitListening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, "127.0.0.1", () => (s.destroy(), r(true)));
      s.on("error", () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

/** CPU seconds (user + system) used so far by a process and its children (nginx's workers). */
function treeCpuSeconds(rootPid: number): number {
  const ticks = 100; // USER_HZ on Linux
  let total = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue;
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const pid = Number(entry);
    const ppid = Number(fields[1]);
    if (pid === rootPid || ppid === rootPid) total += (Number(fields[11]) + Number(fields[12])) / ticks;
  }
  return total;
}

interface WrkResult {
  rps: number;
  p99ms: number;
  requests: number;
  errors: string;
}

function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v);
  if (!m) return NaN;
  return Number(m[1]) * (m[2] === "us" ? 0.001 : m[2] === "s" ? 1000 : 1);
}

async function wrk(url: string, extra: string[] = []): Promise<WrkResult> {
  const r = await run("wrk", [
    "-t1",
    `-c${CONNECTIONS}`,
    `-d${DURATION}s`,
    "--latency",
    "-H",
    `Host: ${HOST}`,
    ...extra,
    url,
  ]);
  if (r.code !== 0) throw new Error(`wrk failed: ${r.stderr}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1] ?? NaN);
  const p99 = toMs(/\s99%\s+(\S+)/.exec(r.stdout)?.[1] ?? "");
  const requests = Number(/(\d+) requests in/.exec(r.stdout)?.[1] ?? NaN);
  const errors = [/Socket errors:.*/.exec(r.stdout)?.[0], /Non-2xx or 3xx responses: \d+/.exec(r.stdout)?.[0]]
    .filter(Boolean)
    .join("; ");
  return { rps, p99ms: p99, requests, errors };
}

export default async function (): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "klab-ingress-bench-"));
  const children: Array<ReturnType<typeof spawn>> = [];
  let server: IngressServer | undefined;
  try {
    const cert = await selfSigned({
      commonName: HOST,
      dnsNames: [HOST],
      keyType: "rsa",
      id: "default/bench-tls",
    });
    writeFileSync(join(dir, "tls.crt"), cert.certPem);
    writeFileSync(join(dir, "tls.key"), cert.keyPem);
    const [upstreamPort, nginxHttp, nginxHttps] = [await freePort(), await freePort(), await freePort()];

    const common = `user root; pid PID; error_log ${dir}/ERR.log warn; daemon off;`;
    const temps = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
      .map((t) => `${t}_temp_path ${dir}/${t}_NAME;`)
      .join(" ");
    // The upstream: a separate nginx with its own workers, so neither proxy competes with it.
    writeFileSync(
      join(dir, "upstream.conf"),
      `${common.replace("PID", `${dir}/upstream.pid`).replace("ERR", "upstream")} worker_processes 1;
events { worker_connections 4096; }
http { ${temps.replace(/NAME/g, "up")} access_log off; keepalive_requests 100000;
  server { listen 127.0.0.1:${upstreamPort}; location / { return 200 "ok\\n"; } } }\n`,
    );
    // The peer: nginx as ingress-nginx would configure it for one Ingress path, one worker.
    writeFileSync(
      join(dir, "proxy.conf"),
      `${common.replace("PID", `${dir}/proxy.pid`).replace("ERR", "proxy")} worker_processes 1;
events { worker_connections 4096; }
http { ${temps.replace(/NAME/g, "px")} access_log off; server_tokens off; keepalive_requests 1000;
  ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets off; ssl_session_cache shared:SSL:10m;
  upstream default-web-80 { server 127.0.0.1:${upstreamPort}; keepalive 320; keepalive_requests 10000; }
  server { listen 127.0.0.1:${nginxHttp}; listen 127.0.0.1:${nginxHttps} ssl http2; server_name ${HOST};
    ssl_certificate ${dir}/tls.crt; ssl_certificate_key ${dir}/tls.key;
    location / {
      proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host;
      proxy_set_header X-Request-ID $request_id; proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $remote_addr; proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Port $server_port; proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Scheme $scheme; proxy_buffering off;
      proxy_pass http://default-web-80; } } }\n`,
    );
    for (const conf of ["upstream.conf", "proxy.conf"]) {
      const child = spawn("nginx", ["-e", "stderr", "-p", dir, "-c", join(dir, conf)], {
        stdio: ["ignore", "ignore", "inherit"],
      });
      children.push(child);
    }
    await waitListening(upstreamPort);
    await waitListening(nginxHttps);

    const config = controllerConfig(
      await selfSigned({
        commonName: "Kubernetes Ingress Controller Fake Certificate",
        dnsNames: ["ingress.local"],
        keyType: "rsa",
        id: "default",
      }),
    );
    const table = buildRoutes(
      [
        ingress("web", {
          tls: [{ hosts: [HOST], secretName: "bench-tls" }],
          annotations: { "nginx.ingress.kubernetes.io/ssl-redirect": "false" },
          rules: [{ host: HOST, paths: [{ path: "/", service: "web" }] }],
        }),
      ],
      [ingressClass("nginx")],
      [service("web", { port: 80 })],
      [endpointSlice("web", [{ ip: "127.0.0.1" }], { port: upstreamPort })],
      [tlsSecret("bench-tls", cert)],
      config,
    );
    server = new IngressServer({
      table,
      logger: pino({ level: "silent" }),
      metrics: new IngressMetrics({
        controllerClass: "k8s.io/ingress-nginx",
        controllerNamespace: "bench",
        controllerPod: "bench",
      }),
      accessLog: null,
      httpPort: 0,
      httpsPort: 0,
      address: "127.0.0.1",
    });
    const ports = await server.start();

    const cases: Array<[string, (port: number) => string, number, number, string[]]> = [
      ["HTTP keep-alive", (p) => `http://127.0.0.1:${p}/`, ports.http, nginxHttp, []],
      ["HTTPS keep-alive", (p) => `https://127.0.0.1:${p}/`, ports.https, nginxHttps, []],
      [
        "TLS handshakes (new connection per request)",
        (p) => `https://127.0.0.1:${p}/`,
        ports.https,
        nginxHttps,
        ["-H", "Connection: close"],
      ],
    ];
    process.stdout.write(
      `ingress benchmark: wrk -t1 -c${CONNECTIONS} -d${DURATION}s, one worker each, upstream nginx "ok", RSA-2048 certificate\n`,
    );
    process.stdout.write(
      `${"case".padEnd(46)} ${"klab req/s".padStart(11)} ${"p99".padStart(9)} ${"nginx req/s".padStart(12)} ${"p99".padStart(9)} ${"ratio".padStart(6)}\n`,
    );
    const proxyPid = children[1].pid!;
    const cpuRows: string[] = [];
    for (const [name, url, ours, theirs, extra] of cases) {
      const c0 = process.cpuUsage();
      const a = await wrk(url(ours), extra);
      const c1 = process.cpuUsage(c0);
      const n0 = treeCpuSeconds(proxyPid);
      const b = await wrk(url(theirs), extra);
      const n1 = treeCpuSeconds(proxyPid);
      const ourUs = (c1.user + c1.system) / a.requests;
      const theirUs = ((n1 - n0) * 1e6) / b.requests;
      cpuRows.push(
        `${name.padEnd(46)} ${ourUs.toFixed(0).padStart(11)} ${theirUs.toFixed(0).padStart(12)} ${(theirUs / ourUs).toFixed(2).padStart(6)}`,
      );
      process.stdout.write(
        `${name.padEnd(46)} ${a.rps.toFixed(0).padStart(11)} ${(a.p99ms.toFixed(2) + "ms").padStart(9)} ${b.rps.toFixed(0).padStart(12)} ${(b.p99ms.toFixed(2) + "ms").padStart(9)} ${(a.rps / b.rps).toFixed(2).padStart(6)}\n`,
      );
      if (a.errors || b.errors) process.stdout.write(`  errors: klab [${a.errors}] nginx [${b.errors}]\n`);
    }
    // CPU per request does not depend on what else the machine runs, unlike requests/s.
    process.stdout.write(
      `\nCPU per request (µs; ratio = nginx / klab, the throughput each would reach on a free core)\n`,
    );
    process.stdout.write(
      `${"case".padEnd(46)} ${"klab µs/req".padStart(11)} ${"nginx µs/req".padStart(12)} ${"ratio".padStart(6)}\n`,
    );
    for (const row of cpuRows) process.stdout.write(row + "\n");
  } finally {
    await server?.stop(1000);
    for (const c of children) c.kill("SIGTERM");
    await Promise.all(
      children.map((c) => (c.exitCode === null ? new Promise((r) => c.once("exit", r)) : undefined)),
    );
    rmSync(dir, { recursive: true, force: true });
  }
}
