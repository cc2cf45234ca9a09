// ingress benchmark: wrk through the klab ingress controller and through Debian's nginx configured
// as ingress-nginx configures it (a reverse proxy with a keep-alive upstream block, access log in
// the default log-format-upstream), both to the same upstream (a separate nginx answering "ok"),
// one nginx worker against one Node process, on loopback. HTTP keep-alive, HTTPS keep-alive, and
// full TLS handshakes (a new connection per request): requests/s and p99, CPU per request, and the
// ratios klab / nginx. Handshakes twice: with session resumption as each side does it (nginx's
// session cache as ingress-nginx configures it, klab's session tickets; wrk resumes its session
// across reconnects) and with resumption off on both sides (every connection a full RSA handshake).
// Each case runs in rounds that alternate which side goes first; figures are the rounds' medians.
// Run: npm run bench ingress   (INGRESS_BENCH_SECONDS=5 per run, INGRESS_BENCH_ROUNDS=3,
// INGRESS_BENCH_PROFILE=<dir> writes a --cpu-prof profile of the klab process there)
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { INGRESS_NODE_FLAGS } from "../../services/node-agent/src/images/bundle.ts";

const DURATION = Number(process.env.INGRESS_BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.INGRESS_BENCH_ROUNDS ?? 3);
const CONNECTIONS = 50;
const HOST = "bench.local";
const CHILD_ENV = "KLAB_INGRESS_BENCH_CHILD";

interface ChildConfig {
  dir: string;
  upstreamPort: number;
}

/** The klab side, in a process of its own as `klab ingress` runs: one table, one Ingress. */
async function child(cfg: ChildConfig): Promise<void> {
  const { default: pino } = await import("pino");
  const { buildRoutes } = await import("../../services/ingress/src/build.ts");
  const { selfSigned } = await import("../../services/ingress/src/certificates.ts");
  const { controllerConfig, endpointSlice, ingress, ingressClass, service, tlsSecret } =
    await import("../../services/ingress/src/fixtures.ts");
  const { IngressMetrics } = await import("../../services/ingress/src/http/metrics.ts");
  const { IngressServer } = await import("../../services/ingress/src/http/server.ts");
  const { batchedLines } = await import("../../services/ingress/src/http/access-log.ts");
  const { X509Certificate } = await import("node:crypto");

  const certPem = readFileSync(join(cfg.dir, "tls.crt"), "utf8");
  const cert = {
    id: "default/bench-tls",
    certPem,
    keyPem: readFileSync(join(cfg.dir, "tls.key"), "utf8"),
    cert: new X509Certificate(certPem),
  };
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
    [endpointSlice("web", [{ ip: "127.0.0.1" }], { port: cfg.upstreamPort })],
    [tlsSecret("bench-tls", cert)],
    config,
  );
  // The access log goes as `klab ingress` sends it: in batches, to an asynchronous destination.
  const accessLog = pino.destination({ dest: join(cfg.dir, "klab-access.log"), sync: false });
  const accessLines = batchedLines(accessLog);
  const server = new IngressServer({
    table,
    logger: pino({ level: "silent" }),
    metrics: new IngressMetrics({
      controllerClass: "k8s.io/ingress-nginx",
      controllerNamespace: "bench",
      controllerPod: "bench",
    }),
    accessLog: accessLines,
    httpPort: 0,
    httpsPort: 0,
    address: "127.0.0.1",
  });
  // The same listener without session resumption: what a full handshake costs each side.
  const fullHandshakes = new IngressServer({
    table,
    logger: pino({ level: "silent" }),
    metrics: new IngressMetrics({
      controllerClass: "k8s.io/ingress-nginx",
      controllerNamespace: "bench",
      controllerPod: "bench-full",
    }),
    accessLog: accessLines,
    httpPort: 0,
    httpsPort: 0,
    address: "127.0.0.1",
    sessionResumption: false,
  });
  const ports = await server.start();
  const full = await fullHandshakes.start();
  process.stdout.write(JSON.stringify({ ...ports, httpsFull: full.https }) + "\n");
  process.once("SIGTERM", () => {
    void Promise.all([server.stop(1000), fullHandshakes.stop(1000)]).then(() => {
      accessLines.flush();
      accessLog.flushSync();
      process.exit(0);
    });
  });
}

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

function median(xs: number[]): number {
  const sorted = [...xs].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const loadAverage = (): string => readFileSync("/proc/loadavg", "utf8").split(" ")[0];

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

function startKlab(
  cfg: ChildConfig,
): Promise<{ proc: ReturnType<typeof spawn>; http: number; https: number; httpsFull: number }> {
  const profileDir = process.env.INGRESS_BENCH_PROFILE;
  // the V8 flags the lab starts the controller with (services/node-agent/src/images/bundle.ts)
  const args = [
    INGRESS_NODE_FLAGS,
    "--import",
    "tsx",
    ...(profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []),
  ];
  const proc = spawn(process.execPath, [...args, fileURLToPath(import.meta.url)], {
    env: { ...process.env, [CHILD_ENV]: JSON.stringify(cfg) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    proc.stdout!.on("data", (d) => {
      out += d;
      const nl = out.indexOf("\n");
      if (nl !== -1)
        resolve({
          proc,
          ...(JSON.parse(out.slice(0, nl)) as { http: number; https: number; httpsFull: number }),
        });
    });
    proc.once("exit", (code) => reject(new Error(`klab ingress exited with ${code} before listening`)));
  });
}

async function bench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "klab-ingress-bench-"));
  const children: Array<ReturnType<typeof spawn>> = [];
  try {
    const { selfSigned } = await import("../../services/ingress/src/certificates.ts");
    const cert = await selfSigned({
      commonName: HOST,
      dnsNames: [HOST],
      keyType: "rsa",
      id: "default/bench-tls",
    });
    writeFileSync(join(dir, "tls.crt"), cert.certPem);
    writeFileSync(join(dir, "tls.key"), cert.keyPem);
    const [upstreamPort, nginxHttp, nginxHttps, nginxHttpsFull] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];

    const common = `user root; pid PID; error_log ${dir}/ERR.log warn; daemon off;`;
    const temps = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
      .map((t) => `${t}_temp_path ${dir}/${t}_NAME;`)
      .join(" ");
    // The upstream: a separate nginx with its own worker, so neither proxy competes with it.
    writeFileSync(
      join(dir, "upstream.conf"),
      `${common.replace("PID", `${dir}/upstream.pid`).replace("ERR", "upstream")} worker_processes 1;
events { worker_connections 4096; }
http { ${temps.replace(/NAME/g, "up")} access_log off; keepalive_requests 100000;
  server { listen 127.0.0.1:${upstreamPort}; location / { return 200 "ok\\n"; } } }\n`,
    );
    // The peer: nginx as ingress-nginx configures it for one Ingress path, one worker: upstream
    // keep-alive (upstream-keepalive-connections 320), keepalive_requests 1000, proxy_buffering
    // off, the X-Forwarded-* set, and the access log in log-format-upstream.
    const location = `location / {
      set $proxy_upstream_name "default-web-80"; set $proxy_alternative_upstream_name "";
      proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host;
      proxy_set_header X-Request-ID $request_id; proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $remote_addr; proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Port $server_port; proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Scheme $scheme; proxy_set_header X-Scheme $scheme;
      proxy_buffering off;
      proxy_pass http://default-web-80; }`;
    writeFileSync(
      join(dir, "proxy.conf"),
      `${common.replace("PID", `${dir}/proxy.pid`).replace("ERR", "proxy")} worker_processes 1;
events { worker_connections 4096; }
http { ${temps.replace(/NAME/g, "px")} server_tokens off; keepalive_requests 1000;
  log_format upstreaminfo '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length $upstream_response_time $upstream_status $request_id';
  access_log ${dir}/nginx-access.log upstreaminfo;
  ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets off; ssl_session_cache shared:SSL:10m;
  upstream default-web-80 { server 127.0.0.1:${upstreamPort}; keepalive 320; keepalive_requests 10000; keepalive_timeout 60s; }
  server { listen 127.0.0.1:${nginxHttp}; listen 127.0.0.1:${nginxHttps} ssl http2; server_name ${HOST};
    ssl_certificate ${dir}/tls.crt; ssl_certificate_key ${dir}/tls.key;
    ${location} }
  server { listen 127.0.0.1:${nginxHttpsFull} ssl; server_name ${HOST}; ssl_session_cache off; ssl_session_tickets off;
    ssl_certificate ${dir}/tls.crt; ssl_certificate_key ${dir}/tls.key;
    ${location} } }\n`,
    );
    for (const conf of ["upstream.conf", "proxy.conf"]) {
      const child = spawn("nginx", ["-e", "stderr", "-p", dir, "-c", join(dir, conf)], {
        stdio: ["ignore", "ignore", "inherit"],
      });
      children.push(child);
    }
    await waitListening(upstreamPort);
    await waitListening(nginxHttps);
    await waitListening(nginxHttpsFull);
    const klab = await startKlab({ dir, upstreamPort });
    children.push(klab.proc);

    const cases: Array<[string, (port: number) => string, number, number, string[]]> = [
      ["HTTP keep-alive", (p) => `http://127.0.0.1:${p}/`, klab.http, nginxHttp, []],
      ["HTTPS keep-alive", (p) => `https://127.0.0.1:${p}/`, klab.https, nginxHttps, []],
      [
        "TLS handshakes, sessions resumed (new conn/req)",
        (p) => `https://127.0.0.1:${p}/`,
        klab.https,
        nginxHttps,
        ["-H", "Connection: close"],
      ],
      [
        "TLS full handshakes, no resumption (new conn/req)",
        (p) => `https://127.0.0.1:${p}/`,
        klab.httpsFull,
        nginxHttpsFull,
        ["-H", "Connection: close"],
      ],
    ];
    process.stdout.write(
      `ingress benchmark: wrk -t1 -c${CONNECTIONS} -d${DURATION}s, ${ROUNDS} rounds per case (medians), one nginx worker vs one Node process, ` +
        `both with upstream keep-alive and an access log (klab's in batches, nginx's a write per request as ingress-nginx has it), upstream nginx "ok", RSA-2048 certificate\n`,
    );
    process.stdout.write(
      `${"case".padEnd(46)} ${"klab req/s".padStart(11)} ${"p99".padStart(9)} ${"nginx req/s".padStart(12)} ${"p99".padStart(9)} ${"ratio".padStart(6)} ${"load".padStart(5)}\n`,
    );
    const proxyPid = children[1].pid!;
    const klabPid = klab.proc.pid!;
    const cpuRows: string[] = [];
    // Each side gets the same warm-up per case (the JIT, the upstream pools, TLS code paths).
    const warm = (url: string, extra: string[]): Promise<unknown> =>
      run("wrk", ["-t1", `-c${CONNECTIONS}`, "-d2s", "-H", `Host: ${HOST}`, ...extra, url]);
    /** One wrk run against one side, with the CPU its process tree used per request. */
    const measure = async (url: string, extra: string[], pid: number) => {
      const c0 = treeCpuSeconds(pid);
      const r = await wrk(url, extra);
      return { ...r, cpuUs: ((treeCpuSeconds(pid) - c0) * 1e6) / r.requests };
    };
    for (const [name, url, ours, theirs, extra] of cases) {
      await warm(url(ours), extra);
      await warm(url(theirs), extra);
      // Rounds alternate which side goes first, and each figure is the median of its rounds: a
      // neighbour's burst on this shared machine then skews one round, not one side.
      const a: Awaited<ReturnType<typeof measure>>[] = [];
      const b: Awaited<ReturnType<typeof measure>>[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        if (round % 2 === 0) {
          a.push(await measure(url(ours), extra, klabPid));
          b.push(await measure(url(theirs), extra, proxyPid));
        } else {
          b.push(await measure(url(theirs), extra, proxyPid));
          a.push(await measure(url(ours), extra, klabPid));
        }
      }
      const [rpsA, rpsB] = [median(a.map((r) => r.rps)), median(b.map((r) => r.rps))];
      const [cpuA, cpuB] = [median(a.map((r) => r.cpuUs)), median(b.map((r) => r.cpuUs))];
      const p99 = (rs: typeof a): string => median(rs.map((r) => r.p99ms)).toFixed(2) + "ms";
      cpuRows.push(
        `${name.padEnd(46)} ${cpuA.toFixed(0).padStart(11)} ${cpuB.toFixed(0).padStart(12)} ${(cpuB / cpuA).toFixed(2).padStart(6)}`,
      );
      process.stdout.write(
        `${name.padEnd(46)} ${rpsA.toFixed(0).padStart(11)} ${p99(a).padStart(9)} ${rpsB.toFixed(0).padStart(12)} ${p99(b).padStart(9)} ${(rpsA / rpsB).toFixed(2).padStart(6)} ${loadAverage().padStart(5)}\n`,
      );
      const rounds = a.map((r, i) => (r.rps / b[i].rps).toFixed(2)).join(" ");
      process.stdout.write(`${"".padEnd(46)} (ratio per round: ${rounds})\n`);
      const errors = [...a, ...b].filter((r) => r.errors).map((r) => r.errors);
      if (errors.length) process.stdout.write(`  errors: ${[...new Set(errors)].join("; ")}\n`);
    }
    // CPU per request does not depend on what else the machine runs, unlike requests/s.
    process.stdout.write(
      `\nCPU per request (µs, medians; ratio = nginx / klab, the throughput each would reach on a free core)\n`,
    );
    process.stdout.write(
      `${"case".padEnd(46)} ${"klab µs/req".padStart(11)} ${"nginx µs/req".padStart(12)} ${"ratio".padStart(6)}\n`,
    );
    for (const row of cpuRows) process.stdout.write(row + "\n");
    process.stdout.write(`(load average after the run: ${readFileSync("/proc/loadavg", "utf8").trim()})\n`);
  } finally {
    for (const c of children) c.kill("SIGTERM");
    await Promise.all(
      children.map((c) => (c.exitCode === null ? new Promise((r) => c.once("exit", r)) : undefined)),
    );
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.env[CHILD_ENV]) await child(JSON.parse(process.env[CHILD_ENV]) as ChildConfig);

export default bench;
