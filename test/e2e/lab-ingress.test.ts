/**
 * The ingress as a user meets it in a `klab up` lab: the ingress-nginx controller pod behind its
 * LoadBalancer Service, published by the edge on 127.0.0.1, driven with real Ingress objects
 * applied by kubectl and real curl/openssl from the host. What routed a request is read back from
 * the controller's access log (`kubectl logs`), matched by the X-Request-ID curl sent.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startLab, type Lab } from "../support/lab.ts";
import { describeWith } from "../support/prereq.ts";
import { runCommand, until } from "../support/wait.ts";

const NS = "routes";
const AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.52";
const CONTROLLER = "app.kubernetes.io/component=controller";

/** nginx's own error page (CRLF line ends, as nginx writes it), which ingress-nginx serves. */
const page = (status: string): string =>
  [
    "<html>",
    `<head><title>${status}</title></head>`,
    "<body>",
    `<center><h1>${status}</h1></center>`,
    "<hr><center>nginx</center>",
    "</body>",
    "</html>",
    "",
  ].join("\r\n");

type PathType = "Exact" | "Prefix";
interface Row {
  paths: [PathType, string][];
  /** request path → index of the path that must serve it, or null: no match, the default backend's 404 */
  requests: [string, number | null][];
}

/** The "Examples" table of kubernetes.io/docs/concepts/services-networking/ingress/, row by row. */
const TABLE: Row[] = [
  {
    paths: [["Prefix", "/"]],
    requests: [
      ["/", 0],
      ["/any/path", 0],
    ],
  },
  {
    paths: [["Exact", "/foo"]],
    requests: [
      ["/foo", 0],
      ["/bar", null],
      ["/foo/", null],
    ],
  },
  { paths: [["Exact", "/foo/"]], requests: [["/foo", null]] },
  {
    paths: [["Prefix", "/foo"]],
    requests: [
      ["/foo", 0],
      ["/foo/", 0],
    ],
  },
  {
    paths: [["Prefix", "/foo/"]],
    requests: [
      ["/foo", 0],
      ["/foo/", 0],
    ],
  },
  { paths: [["Prefix", "/aaa/bb"]], requests: [["/aaa/bbb", null]] },
  {
    paths: [["Prefix", "/aaa/bbb"]],
    requests: [
      ["/aaa/bbb", 0],
      ["/aaa/bbb/", 0],
      ["/aaa/bbb/ccc", 0],
      ["/aaa/bbbxyz", null],
    ],
  },
  { paths: [["Prefix", "/aaa/bbb/"]], requests: [["/aaa/bbb", 0]] },
  {
    paths: [
      ["Prefix", "/"],
      ["Prefix", "/aaa"],
    ],
    requests: [["/aaa/ccc", 1]],
  },
  {
    paths: [
      ["Prefix", "/"],
      ["Prefix", "/aaa"],
      ["Prefix", "/aaa/bbb"],
    ],
    requests: [
      ["/aaa/bbb", 2],
      ["/ccc", 0],
    ],
  },
  { paths: [["Prefix", "/aaa"]], requests: [["/ccc", null]] },
  {
    paths: [
      ["Prefix", "/foo"],
      ["Exact", "/foo"],
    ],
    requests: [["/foo", 1]],
  },
];

type Obj = Record<string, unknown>;

const meta = (name: string, extra: Obj = {}): Obj => ({ name, namespace: NS, ...extra });

function deployment(name: string, replicas: number, container: Obj = {}): Obj {
  const labels = { app: name };
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta(name),
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            {
              name: "netexec",
              image: AGNHOST,
              args: ["netexec", "--http-port=8080", "--udp-port=-1"],
              ports: [{ name: "http", containerPort: 8080 }],
              readinessProbe: { httpGet: { path: "/readyz", port: 8080 }, periodSeconds: 1 },
              ...container,
            },
          ],
        },
      },
    },
  };
}

function service(name: string, app: string, ports: [number, number][]): Obj {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(name),
    spec: {
      selector: { app },
      ports: ports.map(([port, targetPort]) => ({ name: `p${port}`, port, targetPort })),
    },
  };
}

interface PathSpec {
  path: string;
  pathType: PathType;
  service: string;
  port: number;
}

function ingress(
  name: string,
  rules: { host: string; paths: PathSpec[] }[],
  extra: { annotations?: Record<string, string>; tls?: { hosts: string[]; secretName: string }[] } = {},
): Obj {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "Ingress",
    metadata: meta(name, extra.annotations ? { annotations: extra.annotations } : {}),
    spec: {
      ingressClassName: "nginx",
      ...(extra.tls ? { tls: extra.tls } : {}),
      rules: rules.map((r) => ({
        host: r.host,
        http: {
          paths: r.paths.map((p) => ({
            path: p.path,
            pathType: p.pathType,
            backend: { service: { name: p.service, port: { number: p.port } } },
          })),
        },
      })),
    },
  };
}

const root = (service: string, port = 80): PathSpec[] => [{ path: "/", pathType: "Prefix", service, port }];

/** Everything the suite routes to: the table's rows send path i to port 81+i of Service `paths`. */
function manifest(): Obj[] {
  return [
    deployment("echo", 2),
    // the usual graceful shutdown: keep serving while the endpoint is withdrawn, then SIGTERM
    deployment("roll", 2, { lifecycle: { preStop: { exec: { command: ["sleep", "2"] } } } }),
    deployment("scaled", 1),
    service("paths", "echo", [
      [81, 8080],
      [82, 8080],
      [83, 8080],
    ]),
    // nothing listens on 9999 in the echo pods: every connection is refused
    service("refuse", "echo", [[80, 9999]]),
    service("roll", "roll", [[80, 8080]]),
    service("scaled", "scaled", [[80, 8080]]),
    ...TABLE.map((row, i) =>
      ingress(`row-${i}`, [
        {
          host: `row${i}.paths.test`,
          paths: row.paths.map(([pathType, path], j) => ({ path, pathType, service: "paths", port: 81 + j })),
        },
      ]),
    ),
    ingress("wildcard", [{ host: "*.foo.com", paths: root("paths", 81) }]),
    ingress("merge-a", [
      {
        host: "merged.test",
        paths: [
          { path: "/a", pathType: "Prefix", service: "paths", port: 81 },
          { path: "/m", pathType: "Prefix", service: "paths", port: 81 },
        ],
      },
    ]),
    ingress("merge-b", [
      {
        host: "merged.test",
        paths: [
          { path: "/b", pathType: "Prefix", service: "paths", port: 82 },
          { path: "/m", pathType: "Exact", service: "paths", port: 82 },
        ],
      },
    ]),
    ingress(
      "sni",
      [
        { host: "one.sni.test", paths: root("paths", 81) },
        { host: "two.sni.test", paths: root("paths", 82) },
      ],
      {
        tls: [
          { hosts: ["one.sni.test"], secretName: "sni-one" },
          { hosts: ["two.sni.test"], secretName: "sni-two" },
        ],
      },
    ),
    ingress("refuse", [{ host: "refuse.test", paths: root("refuse") }]),
    ingress("slow", [{ host: "slow.test", paths: root("paths", 81) }], {
      annotations: { "nginx.ingress.kubernetes.io/proxy-read-timeout": "2" },
    }),
    ingress("roll", [{ host: "roll.test", paths: root("roll") }]),
    ingress("scaled", [{ host: "scaled.test", paths: root("scaled") }]),
    // last: once it answers, the controller has loaded every Ingress above (one watch, in order)
    ingress("sentinel", [{ host: "sentinel.test", paths: root("paths", 83) }]),
  ];
}

interface Reply {
  code: number;
  body: string;
}

/**
 * nginx's default log-format-upstream, field by field. $upstream_addr, _response_length,
 * _response_time and _status list one value per try, separated by ", ".
 */
const LIST = String.raw`(-|[^\s,]+(?:, [^\s,]+)*)`;
const QUOTED = String.raw`"((?:[^"\\]|\\.)*)"`;
const ACCESS_LOG = new RegExp(
  [
    String.raw`^(\S+) - (\S+) \[(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\]`,
    QUOTED,
    String.raw`(\d{3}) (\d+)`,
    QUOTED,
    QUOTED,
    String.raw`(\d+) (\d+\.\d{3}) \[(\S*)\] \[(\S*)\]`,
    LIST,
    LIST,
    LIST,
    LIST,
    String.raw`([0-9a-f]{32})$`,
  ].join(" "),
);

interface AccessLogLine {
  remoteAddr: string;
  request: string;
  status: number;
  upstreamName: string;
  upstreamAddr: string[];
  upstreamStatus: string[];
  requestId: string;
}

function parseAccessLog(line: string): AccessLogLine | undefined {
  const m = ACCESS_LOG.exec(line);
  if (!m) return undefined;
  return {
    remoteAddr: m[1]!,
    request: m[4]!,
    status: Number(m[5]),
    upstreamName: m[11]!,
    upstreamAddr: m[13]!.split(", "),
    upstreamStatus: m[16]!.split(", "),
    requestId: m[17]!,
  };
}

/** Sends raw bytes to a published port and returns all it answers until the connection closes. */
function exchange(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect(port, "127.0.0.1", () => s.write(bytes));
    const guard = setTimeout(() => {
      s.destroy();
      reject(new Error(`port ${port} kept the connection open after a bad request`));
    }, 30_000);
    s.on("data", (c: Buffer) => chunks.push(c));
    // a reset after the answer still counts as the answer
    s.on("error", () => undefined);
    s.on("close", () => {
      clearTimeout(guard);
      resolve(Buffer.concat(chunks));
    });
  });
}

describeWith(
  { root: true, tun: true, tools: ["ip", "kubectl", "curl", "openssl"] },
  "the ingress in a klab up lab, from the host through the edge",
  () => {
    let lab: Lab;
    let dir = "";
    /** request id → what the access log must say about it */
    const sent = new Map<string, { upstream: string; status: number }>();

    async function curl(
      host: string,
      path: string,
      o: { https?: boolean; args?: string[]; expectUpstream?: string } = {},
    ): Promise<Reply> {
      const port = o.https ? lab.httpsPort : lab.httpPort;
      const id = randomBytes(16).toString("hex");
      const r = await runCommand("curl", [
        "-s",
        "-m",
        "30",
        "-w",
        "\n%{http_code}",
        "-H",
        `X-Request-ID: ${id}`,
        "--resolve",
        `${host}:${port}:127.0.0.1`,
        ...(o.args ?? (o.https ? ["-k"] : [])),
        `${o.https ? "https" : "http"}://${host}:${port}${path}`,
      ]);
      const cut = r.stdout.lastIndexOf("\n");
      const reply = { code: Number(r.stdout.slice(cut + 1)), body: r.stdout.slice(0, cut) };
      if (o.expectUpstream) sent.set(id, { upstream: o.expectUpstream, status: reply.code });
      return reply;
    }

    async function openssl(args: string[]): Promise<string> {
      const r = await runCommand("openssl", args);
      if (r.code !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
      return r.stdout;
    }

    /** The subject of the certificate the published HTTPS port serves for a server name. */
    async function servedSubject(serverName: string): Promise<string> {
      const r = await runCommand("openssl", [
        "s_client",
        "-connect",
        `127.0.0.1:${lab.httpsPort}`,
        "-servername",
        serverName,
      ]);
      return /^subject=(.*)$/m.exec(r.stdout)?.[1] ?? `(no certificate: ${r.stderr})`;
    }

    const controllerLog = async (): Promise<string> => {
      const [pod] = await lab.pods("ingress-nginx", CONTROLLER);
      return lab.kubectlOk(["-n", "ingress-nginx", "logs", pod!.name]);
    };

    beforeAll(async () => {
      lab = await startLab({ prefix: "ingr" });
      dir = mkdtempSync(join(tmpdir(), "klab-ingress-certs-"));
      for (const n of ["one", "two"]) {
        const host = `${n}.sni.test`;
        await openssl([
          "req",
          "-x509",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:prime256v1",
          "-nodes",
          "-days",
          "2",
          "-subj",
          `/CN=${host}`,
          "-addext",
          `subjectAltName=DNS:${host}`,
          "-keyout",
          join(dir, `${n}.key`),
          "-out",
          join(dir, `${n}.crt`),
        ]);
      }
      await lab.kubectlOk(["create", "namespace", NS]);
      for (const n of ["one", "two"])
        await lab.kubectlOk([
          "-n",
          NS,
          "create",
          "secret",
          "tls",
          `sni-${n}`,
          "--cert",
          join(dir, `${n}.crt`),
          "--key",
          join(dir, `${n}.key`),
        ]);
      await lab.kubectlOk(["apply", "-f", "-"], {
        input: JSON.stringify({ apiVersion: "v1", kind: "List", items: manifest() }),
      });
      await lab.waitReady(NS, "app=echo", 2);
      let last: Reply | undefined;
      await until("the controller serving the last Ingress", 180_000, async () => {
        last = await curl("sentinel.test", "/hostname");
        return last.code === 200 ? last : undefined;
      }).catch((err: Error) => {
        throw new Error(`${err.message}; it last answered ${JSON.stringify(last)}`);
      });
    }, 480_000);

    afterAll(async () => {
      await lab?.down();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }, 180_000);

    it("sends myapp.com/api to an api pod and / to a web pod, and plain HTTP to 308", async () => {
      const api = new Set((await lab.waitReady("default", "app=api", 2)).map((p) => p.name));
      const web = new Set((await lab.waitReady("default", "app=web", 2)).map((p) => p.name));
      await until("myapp.com/api answering", 60_000, async () =>
        (await curl("myapp.com", "/api", { https: true })).code === 200 ? true : undefined,
      );
      const a = await curl("myapp.com", "/api", { https: true, expectUpstream: "default-api-service-80" });
      expect(a.code).toBe(200);
      expect(api.has(a.body.trim()), `api answered ${a.body}`).toBe(true);
      const w = await curl("myapp.com", "/hostname", {
        https: true,
        expectUpstream: "default-web-service-80",
      });
      expect(w.code).toBe(200);
      expect(web.has(w.body), `web answered ${w.body}`).toBe(true);
      const plain = await runCommand("curl", [
        "-s",
        "-m",
        "30",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        "--resolve",
        `myapp.com:${lab.httpPort}:127.0.0.1`,
        `http://myapp.com:${lab.httpPort}/api?x=1`,
      ]);
      expect(plain.stdout).toBe("308 https://myapp.com/api?x=1");
    }, 60_000);

    it("answers a host no Ingress names with the default backend's 404, nginx's page", async () => {
      const r = await curl("nobody.test", "/");
      expect(r).toEqual({ code: 404, body: page("404 Not Found") });
      // the TLS port too, after the fake certificate
      expect(await curl("nobody.test", "/", { https: true })).toEqual({
        code: 404,
        body: page("404 Not Found"),
      });
    }, 60_000);

    it("gives 502 when every endpoint refuses and 504 when the backend is slower than proxy-read-timeout", async () => {
      // 503 until the controller has the refuse Service's endpoints
      await until("refuse.test past 503", 60_000, async () =>
        (await curl("refuse.test", "/")).code !== 503 ? true : undefined,
      );
      expect(await curl("refuse.test", "/", { expectUpstream: "routes-refuse-80" })).toEqual({
        code: 502,
        body: page("502 Bad Gateway"),
      });
      // agnhost netexec runs /shell commands: `sleep 4` holds the answer past the 2 s timeout
      expect(await curl("slow.test", "/shell?cmd=sleep%204", { expectUpstream: "routes-paths-81" })).toEqual({
        code: 504,
        body: page("504 Gateway Time-out"),
      });
      const fast = await curl("slow.test", "/hostname", { expectUpstream: "routes-paths-81" });
      expect(fast.code).toBe(200);
    }, 90_000);

    it("gives 503 once the backend's Deployment is scaled to 0", async () => {
      await lab.waitReady(NS, "app=scaled", 1);
      await until("scaled.test answering", 60_000, async () =>
        (await curl("scaled.test", "/hostname")).code === 200 ? true : undefined,
      );
      await lab.kubectlOk(["-n", NS, "scale", "deployment", "scaled", "--replicas=0"]);
      const r = await until("503 from scaled.test", 90_000, async () => {
        const x = await curl("scaled.test", "/hostname");
        return x.code === 503 ? x : undefined;
      });
      expect(r.body).toBe(page("503 Service Temporarily Unavailable"));
    }, 180_000);

    it("matches paths as the examples table of the Kubernetes Ingress documentation says", async () => {
      const results: string[] = [];
      const expected: string[] = [];
      for (const [i, row] of TABLE.entries()) {
        const rules = row.paths.map(([t, p]) => `${t} ${p}`).join(", ");
        for (const [path, served] of row.requests) {
          const upstream = served === null ? undefined : `routes-paths-${81 + served}`;
          const r = await curl(`row${i}.paths.test`, path, { expectUpstream: upstream });
          results.push(`${rules} | ${path} → ${r.code}`);
          expected.push(`${rules} | ${path} → ${served === null ? 404 : 200}`);
        }
      }
      expect(results).toEqual(expected);
      // which rule served each request is checked against the access log in the last test
    }, 120_000);

    it("matches *.foo.com for one label only: bar.foo.com, not baz.bar.foo.com nor foo.com", async () => {
      expect((await curl("bar.foo.com", "/", { expectUpstream: "routes-paths-81" })).code).toBe(200);
      expect((await curl("baz.bar.foo.com", "/")).code).toBe(404);
      expect((await curl("foo.com", "/")).code).toBe(404);
    }, 60_000);

    it("merges several Ingresses on one host, an Exact path of one winning over the other's Prefix", async () => {
      expect((await curl("merged.test", "/a", { expectUpstream: "routes-paths-81" })).code).toBe(200);
      expect((await curl("merged.test", "/b/x", { expectUpstream: "routes-paths-82" })).code).toBe(200);
      expect((await curl("merged.test", "/m", { expectUpstream: "routes-paths-82" })).code).toBe(200);
      expect((await curl("merged.test", "/m/x", { expectUpstream: "routes-paths-81" })).code).toBe(200);
      expect((await curl("merged.test", "/c")).code).toBe(404);
    }, 60_000);

    it("chooses the certificate by SNI among several, the fake one for an unknown name", async () => {
      // the Secrets come through their own watch: give it the time to catch up
      await until("one.sni.test's own certificate", 60_000, async () =>
        (await servedSubject("one.sni.test")) === "CN = one.sni.test" ? true : undefined,
      );
      expect(await servedSubject("one.sni.test")).toBe("CN = one.sni.test");
      expect(await servedSubject("two.sni.test")).toBe("CN = two.sni.test");
      expect(await servedSubject("three.sni.test")).toBe(
        "CN = Kubernetes Ingress Controller Fake Certificate, O = Acme Co",
      );
      // curl verifies each name against its own certificate, over HTTP/2
      for (const [n, port] of [
        ["one", 81],
        ["two", 82],
      ] as const) {
        const r = await curl(`${n}.sni.test`, "/hostname", {
          https: true,
          args: ["--http2", "--cacert", join(dir, `${n}.crt`)],
          expectUpstream: `routes-paths-${port}`,
        });
        expect(r.code).toBe(200);
      }
    }, 60_000);

    it("loses no request while the backend Deployment rolls over under steady load", async () => {
      const before = await lab.waitReady(NS, "app=roll", 2);
      await until("roll.test answering", 60_000, async () =>
        (await curl("roll.test", "/hostname")).code === 200 ? true : undefined,
      );
      const old = new Set(before.map((p) => p.name));
      const codes = new Map<string, number>();
      const answeredBy = new Set<string>();
      let total = 0;
      let stop = false;
      // each curl run sends 10 requests on one keep-alive connection
      const load = async (https: boolean): Promise<void> => {
        const port = https ? lab.httpsPort : lab.httpPort;
        const url = `${https ? "https" : "http"}://roll.test:${port}/hostname`;
        while (!stop) {
          const r = await runCommand(
            "curl",
            [
              "-s",
              "-k",
              "-m",
              "30",
              "-w",
              "|%{http_code}\n",
              "--resolve",
              `roll.test:${port}:127.0.0.1`,
              ...Array<string>(10).fill(url),
            ],
            { timeoutMs: 330_000 },
          );
          for (const line of r.stdout.split("\n").filter(Boolean)) {
            const [body, code] = [
              line.slice(0, line.lastIndexOf("|")),
              line.slice(line.lastIndexOf("|") + 1),
            ];
            codes.set(code, (codes.get(code) ?? 0) + 1);
            if (code === "200") answeredBy.add(body);
            total++;
          }
        }
      };
      const loops = [load(false), load(true)];
      try {
        await until("requests flowing", 60_000, async () => (total >= 20 ? true : undefined));
        await lab.kubectlOk(["-n", NS, "rollout", "restart", "deployment/roll"]);
        await lab.kubectlOk(["-n", NS, "rollout", "status", "deployment/roll", "--timeout=180s"], {
          timeoutMs: 200_000,
        });
        // until the old pods are gone, not merely replaced: their termination is the risky part
        await until("the old roll pods deleted", 120_000, async () => {
          const r = await lab.kubectlOk(["-n", NS, "get", "pods", "-l", "app=roll", "-o", "name"]);
          return r.split("\n").some((n) => old.has(n.replace("pod/", ""))) ? undefined : true;
        });
        const after = total;
        await until("a few hundred requests in all", 120_000, async () =>
          total >= Math.max(300, after + 20) ? true : undefined,
        );
      } finally {
        stop = true;
        await Promise.all(loops);
      }
      expect(Object.fromEntries(codes)).toEqual({ "200": total });
      const events = JSON.parse(await lab.kubectlOk(["-n", NS, "get", "events", "-o", "json"])) as {
        items: { reason?: string }[];
      };
      expect(events.items.filter((e) => e.reason === "FailedPreStopHook")).toEqual([]);
      const now = new Set((await lab.pods(NS, "app=roll")).map((p) => p.name));
      expect([...old].some((n) => answeredBy.has(n))).toBe(true);
      expect([...now].some((n) => answeredBy.has(n))).toBe(true);
    }, 480_000);

    it("answers malformed HTTP, oversized headers and bad TLS with 400-class answers, and keeps running", async () => {
      const statusOf = (b: Buffer) => /^HTTP\/1\.1 (\d{3}) /.exec(b.toString("latin1"))?.[1];
      const garbage = await exchange(lab.httpPort, Buffer.from("HELLO THERE\r\n\r\n"));
      expect(statusOf(garbage)).toBe("400");
      const noColon = await exchange(
        lab.httpPort,
        Buffer.from("GET / HTTP/1.1\r\nHost: myapp.com\r\na header without a colon\r\n\r\n"),
      );
      expect(statusOf(noColon)).toBe("400");
      // one 40k header, then six of 6k (more than 32k in all)
      const big = await curl("myapp.com", "/", { args: ["-H", `X-Big: ${"a".repeat(40_000)}`] });
      expect(big.code).toBe(400);
      expect(big.body).toContain("Request Header Or Cookie Too Large");
      const many = await curl("myapp.com", "/", {
        args: Array.from({ length: 6 }, (_, i) => ["-H", `X-Many-${i}: ${"b".repeat(6_000)}`]).flat(),
      });
      expect(many.code).toBe(400);
      // plain HTTP on the TLS port: nginx's own 400 page
      const plain = await exchange(lab.httpsPort, Buffer.from("GET / HTTP/1.1\r\nHost: myapp.com\r\n\r\n"));
      expect(statusOf(plain)).toBe("400");
      expect(plain.toString()).toContain("The plain HTTP request was sent to HTTPS port");
      // a complete TLS record holding a ClientHello that does not parse: a fatal alert, or a close
      const hello = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x2f, 0x01, 0x00, 0x00, 0x2b, 0x03, 0x03]);
      for (const bad of [
        Buffer.concat([hello, Buffer.alloc(41, 0xff)]),
        Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00]), Buffer.alloc(16_384, 0x41)]),
      ]) {
        const answer = await exchange(lab.httpsPort, bad);
        if (answer.length) expect(answer.subarray(0, 2)).toEqual(Buffer.from([0x15, 0x03]));
      }
      const [controller] = await lab.pods("ingress-nginx", CONTROLLER);
      expect(controller!.ready).toBe(true);
      expect(controller!.restarts).toBe(0);
      expect((await curl("myapp.com", "/hostname", { https: true })).code).toBe(200);
    }, 120_000);

    it("logs every proxied request in ingress-nginx's default access log format", async () => {
      const wanted = [...sent.keys()];
      const lines = await until("the access log lines of this suite's requests", 60_000, async () => {
        const all = (await controllerLog()).split("\n");
        const byId = new Map<string, string>();
        for (const l of all) {
          const id = /([0-9a-f]{32})$/.exec(l)?.[1];
          if (id && sent.has(id)) byId.set(id, l);
        }
        return wanted.every((id) => byId.has(id)) ? { all, byId } : undefined;
      });
      // the controller's own logs are JSON; every other line is an access log line
      const access = lines.all.filter((l) => l && !l.startsWith("{"));
      const unparsed = access.filter((l) => !parseAccessLog(l));
      expect(unparsed).toEqual([]);
      for (const l of access) expect(parseAccessLog(l)!.remoteAddr).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      for (const [id, want] of sent) {
        const line = parseAccessLog(lines.byId.get(id)!)!;
        expect({ id, upstream: line.upstreamName, status: line.status }).toEqual({
          id,
          upstream: want.upstream,
          status: want.status,
        });
        expect(line.requestId).toBe(id);
        for (const a of line.upstreamAddr) expect(a).toMatch(/^10\.244\.\d+\.\d+:\d+$/);
      }
    }, 90_000);
  },
);
