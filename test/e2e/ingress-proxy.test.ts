import { afterAll, beforeAll, expect, it } from "vitest";
import net from "node:net";
import tls from "node:tls";
import http from "node:http";
import { WebSocket, WebSocketServer } from "ws";
import { describeWith } from "../support/prereq.ts";
import { curl, servedCertificate } from "./ingress-support.ts";
import {
  startController,
  startUpstream,
  startUpstreamGroup,
  type Controller,
  type Objects,
  type Upstream,
} from "../../services/ingress/src/harness.ts";
import { endpointSlice, ingress, service, tlsSecret } from "../../services/ingress/src/fixtures.ts";
import { selfSigned } from "../../services/ingress/src/certificates.ts";
import { ACCESS_LOG_PATTERN } from "../../services/ingress/src/http/access-log.ts";

const A = "nginx.ingress.kubernetes.io/";

describeWith({ tools: ["curl", "openssl"] }, "ingress controller, end to end with curl", () => {
  let ctl: Controller;
  let web: Upstream;
  let api: Upstream;
  let canary: Upstream;
  let slow: Upstream;
  let sticky: Upstream[];
  let wsServer: http.Server;
  let wsPort: number;
  let refusedPort: number;
  let objects: Objects;

  beforeAll(async () => {
    web = await startUpstream("web");
    api = await startUpstream("api");
    canary = await startUpstream("canary");
    slow = await startUpstream("slow", { handler: () => undefined });
    sticky = await startUpstreamGroup("sticky", 3);
    wsServer = http.createServer();
    const wss = new WebSocketServer({ server: wsServer });
    wss.on("connection", (sock) => sock.on("message", (m) => sock.send(`echo: ${m.toString()}`)));
    await new Promise<void>((r) => wsServer.listen(0, "127.0.0.1", () => r()));
    wsPort = (wsServer.address() as net.AddressInfo).port;
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
    refusedPort = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));

    const myapp = await selfSigned({ commonName: "myapp.com", dnsNames: ["myapp.com"], keyType: "ecdsa" });
    const other = await selfSigned({
      commonName: "other.com",
      dnsNames: ["other.com", "*.other.com"],
      keyType: "ecdsa",
    });
    const svc = (name: string, u: { ip: string; port: number }[]) => ({
      service: service(name, { port: 80 }),
      slice: endpointSlice(
        name,
        u.map((x) => ({ ip: x.ip })),
        { port: u[0]?.port ?? 1 },
      ),
    });
    const all = [
      svc("web", [web]),
      svc("api", [api]),
      svc("canary", [canary]),
      svc("slow", [slow]),
      svc("sticky", sticky),
      svc("ws", [{ ip: "127.0.0.1", port: wsPort }]),
      svc("refused", [{ ip: "127.0.0.1", port: refusedPort }]),
      svc("empty", []),
    ];
    objects = {
      services: all.map((s) => s.service),
      slices: all.map((s) => s.slice).filter((s) => s.endpoints!.length > 0),
      secrets: [tlsSecret("myapp-tls", myapp), tlsSecret("other-tls", other)],
      ingresses: [
        ingress("web-ingress", {
          tls: [{ hosts: ["myapp.com"], secretName: "myapp-tls" }],
          rules: [
            {
              host: "myapp.com",
              paths: [
                { path: "/", service: "web" },
                { path: "/api", service: "api" },
              ],
            },
          ],
        }),
        ingress("other", {
          tls: [{ hosts: ["other.com", "*.other.com"], secretName: "other-tls" }],
          annotations: { [A + "ssl-redirect"]: "false" },
          rules: [
            { host: "other.com", paths: [{ path: "/", service: "web" }] },
            { host: "*.other.com", paths: [{ path: "/", service: "api" }] },
          ],
        }),
        ingress("nosecret", {
          tls: [{ hosts: ["nosecret.com"], secretName: "missing" }],
          annotations: { [A + "ssl-redirect"]: "false" },
          rules: [{ host: "nosecret.com", paths: [{ path: "/", service: "web" }] }],
        }),
        ingress("plain", {
          rules: [
            { host: "plain.com", paths: [{ path: "/", service: "web" }] },
            {
              host: "fail.com",
              paths: [
                { path: "/refused", service: "refused" },
                { path: "/empty", service: "empty" },
                { path: "/slow", service: "slow" },
              ],
            },
            { host: "ws.com", paths: [{ path: "/", service: "ws" }] },
            { host: "sticky.com", paths: [{ path: "/", service: "sticky" }] },
          ],
        }),
        ingress("slow-timeouts", {
          annotations: { [A + "proxy-read-timeout"]: "1" },
          rules: [{ host: "timeout.com", paths: [{ path: "/", service: "slow" }] }],
        }),
        ingress("affinity", {
          annotations: { [A + "affinity"]: "cookie" },
          rules: [{ host: "affinity.com", paths: [{ path: "/", service: "sticky" }] }],
        }),
        ingress("rewrite", {
          annotations: { [A + "rewrite-target"]: "/$2" },
          rules: [
            {
              host: "rewrite.com",
              paths: [{ path: "/something(/|$)(.*)", pathType: "ImplementationSpecific", service: "web" }],
            },
          ],
        }),
        ingress("main", { rules: [{ host: "canary.com", paths: [{ path: "/", service: "web" }] }] }),
        ingress("main-canary", {
          annotations: {
            [A + "canary"]: "true",
            [A + "canary-by-header"]: "X-Canary",
            [A + "canary-weight"]: "0",
          },
          rules: [{ host: "canary.com", paths: [{ path: "/", service: "canary" }] }],
        }),
        ingress("weighted", { rules: [{ host: "weight.com", paths: [{ path: "/", service: "web" }] }] }),
        ingress("weighted-canary", {
          annotations: { [A + "canary"]: "true", [A + "canary-weight"]: "50" },
          rules: [{ host: "weight.com", paths: [{ path: "/", service: "canary" }] }],
        }),
        ingress("limited", {
          annotations: { [A + "limit-rps"]: "1", [A + "whitelist-source-range"]: "127.0.0.0/8" },
          rules: [{ host: "limited.com", paths: [{ path: "/", service: "web" }] }],
        }),
        ingress("private", {
          annotations: { [A + "whitelist-source-range"]: "10.0.0.0/8" },
          rules: [{ host: "private.com", paths: [{ path: "/", service: "web" }] }],
        }),
        ingress("moved", {
          annotations: { [A + "permanent-redirect"]: "https://www.example.com/new" },
          rules: [{ host: "moved.com", paths: [{ path: "/", service: "web" }] }],
        }),
        ingress("small", {
          annotations: { [A + "proxy-body-size"]: "1k" },
          rules: [{ host: "small.com", paths: [{ path: "/", service: "web" }] }],
        }),
      ],
    };
    ctl = await startController(objects);
  });

  afterAll(async () => {
    await ctl?.close();
    for (const u of [web, api, canary, slow, ...(sticky ?? [])]) await u?.close();
    wsServer?.closeAllConnections();
    wsServer?.close();
  });

  const at = (host: string, port = ctl.http) => ["--resolve", `${host}:${port}:127.0.0.1`];

  it("routes myapp.com/api to the api Service and / to web over HTTPS, with the forwarding headers", async () => {
    const r = await curl([
      ...at("myapp.com", ctl.https),
      "-k",
      `https://myapp.com:${ctl.https}/api/users?x=1`,
    ]);
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body);
    expect(seen.upstream).toBe("api");
    expect(seen.url).toBe("/api/users?x=1");
    expect(seen.headers).toMatchObject({
      host: `myapp.com:${ctl.https}`,
      "x-real-ip": "127.0.0.1",
      "x-forwarded-for": "127.0.0.1",
      "x-forwarded-proto": "https",
      "x-forwarded-scheme": "https",
      "x-scheme": "https",
      "x-forwarded-host": `myapp.com:${ctl.https}`,
      "x-forwarded-port": String(ctl.https),
    });
    expect(seen.headers["x-request-id"]).toMatch(/^[0-9a-f]{32}$/);
    expect(r.headers["server"]).toBeUndefined();
    expect(r.headers["strict-transport-security"]).toBe("max-age=31536000; includeSubDomains");
    const root = await curl([...at("myapp.com", ctl.https), "-k", `https://myapp.com:${ctl.https}/`]);
    expect(JSON.parse(root.body).upstream).toBe("web");
  });

  it("keeps a client's X-Request-ID and replaces its X-Forwarded-For", async () => {
    const r = await curl([
      ...at("plain.com"),
      "-H",
      "X-Request-ID: abc123",
      "-H",
      "X-Forwarded-For: 6.6.6.6",
      `http://plain.com:${ctl.http}/`,
    ]);
    const seen = JSON.parse(r.body);
    expect(seen.headers["x-request-id"]).toBe("abc123");
    expect(seen.headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(seen.headers["x-original-forwarded-for"]).toBe("6.6.6.6");
  });

  it("answers plain HTTP for a TLS host with 308 to https", async () => {
    const r = await curl([...at("myapp.com"), `http://myapp.com:${ctl.http}/api?q=1`]);
    expect(r.status).toBe(308);
    expect(r.headers["location"]).toBe("https://myapp.com/api?q=1");
    expect(r.body).toContain("<center><h1>308 Permanent Redirect</h1></center>");
  });

  it("answers permanent-redirect with nginx's 301", async () => {
    const r = await curl([...at("moved.com"), `http://moved.com:${ctl.http}/old`]);
    expect(r.status).toBe(301);
    expect(r.headers["location"]).toBe("https://www.example.com/new");
    expect(r.body).toContain("<title>301 Moved Permanently</title>");
  });

  it("serves the default backend's 404 page for an unknown host", async () => {
    const r = await curl([...at("unknown.com"), `http://unknown.com:${ctl.http}/`]);
    expect(r.status).toBe(404);
    expect(r.body).toBe(
      "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
    );
  });

  it("SNI picks the certificate; no secret or no SNI gets the fake certificate", async () => {
    expect(await servedCertificate(ctl.https, "myapp.com")).toMatch(/subject=CN ?= ?myapp.com/);
    expect(await servedCertificate(ctl.https, "other.com")).toMatch(/subject=CN ?= ?other.com/);
    expect(await servedCertificate(ctl.https, "x.other.com")).toMatch(/subject=CN ?= ?other.com/);
    expect(await servedCertificate(ctl.https, "nosecret.com")).toMatch(
      /issuer=CN ?= ?Kubernetes Ingress Controller Fake Certificate, ?O ?= ?Acme Co/,
    );
    expect(await servedCertificate(ctl.https, undefined)).toMatch(
      /Kubernetes Ingress Controller Fake Certificate/,
    );
    // SNI chooses the certificate, Host chooses the route.
    const r = await curl(["-k", "-H", "Host: plain.com", `https://127.0.0.1:${ctl.https}/`]);
    expect(JSON.parse(r.body).upstream).toBe("web");
  });

  it("speaks HTTP/2 over TLS (ALPN)", async () => {
    const r = await curl([
      ...at("myapp.com", ctl.https),
      "-k",
      "--http2",
      `https://myapp.com:${ctl.https}/api`,
    ]);
    expect(r.httpVersion).toBe("2");
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).upstream).toBe("api");
  });

  it("rewrite-target sends the captured part upstream", async () => {
    const r = await curl([...at("rewrite.com"), `http://rewrite.com:${ctl.http}/something/new?a=b`]);
    expect(JSON.parse(r.body).url).toBe("/new?a=b");
  });

  it("canary by header and by weight", async () => {
    const by = async (h: string[]) =>
      JSON.parse((await curl([...at("canary.com"), ...h, `http://canary.com:${ctl.http}/`])).body).upstream;
    expect(await by(["-H", "X-Canary: always"])).toBe("canary");
    expect(await by(["-H", "X-Canary: never"])).toBe("web");
    expect(await by([])).toBe("web");
    const seen = new Set<string>();
    for (let i = 0; i < 40 && seen.size < 2; i++)
      seen.add(
        JSON.parse((await curl([...at("weight.com"), `http://weight.com:${ctl.http}/`])).body).upstream,
      );
    expect(seen).toEqual(new Set(["web", "canary"]));
  });

  it("round-robins over endpoints, and cookie affinity keeps a client on one", async () => {
    const rr = new Set<string>();
    for (let i = 0; i < 6; i++)
      rr.add(JSON.parse((await curl([...at("sticky.com"), `http://sticky.com:${ctl.http}/`])).body).upstream);
    expect(rr.size).toBe(3);
    const first = await curl([...at("affinity.com"), `http://affinity.com:${ctl.http}/`]);
    const cookie = first.headers["set-cookie"];
    expect(cookie).toMatch(/^INGRESSCOOKIE=[0-9a-f]{32}\|[0-9a-f]{32}; Path=\/; HttpOnly$/);
    const pinned = JSON.parse(first.body).upstream;
    for (let i = 0; i < 6; i++) {
      const r = await curl([
        ...at("affinity.com"),
        "-H",
        `Cookie: ${cookie.split(";")[0]}`,
        `http://affinity.com:${ctl.http}/`,
      ]);
      expect(JSON.parse(r.body).upstream).toBe(pinned);
      expect(r.headers["set-cookie"]).toBeUndefined();
    }
  });

  it("502 when the upstream refuses, 503 with no endpoints, 504 when it is too slow", async () => {
    const refused = await curl([...at("fail.com"), `http://fail.com:${ctl.http}/refused`]);
    expect(refused.status).toBe(502);
    expect(refused.body).toContain("<title>502 Bad Gateway</title>");
    const empty = await curl([...at("fail.com"), `http://fail.com:${ctl.http}/empty`]);
    expect(empty.status).toBe(503);
    expect(empty.body).toContain("<title>503 Service Temporarily Unavailable</title>");
    const slowest = await curl([...at("timeout.com"), `http://timeout.com:${ctl.http}/`]);
    expect(slowest.status).toBe(504);
    expect(slowest.body).toContain("<title>504 Gateway Time-out</title>");
  });

  it("limit-rps 1 lets a burst of 6 requests through at once and answers the rest with 503", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 10 });
    const one = () =>
      new Promise<number>((resolve, reject) => {
        const req = http.get(
          { host: "127.0.0.1", port: ctl.http, path: "/", agent, headers: { host: "limited.com" } },
          (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode ?? 0));
          },
        );
        req.on("error", reject);
      });
    const statuses = await Promise.all(Array.from({ length: 10 }, one));
    agent.destroy();
    const ok = statuses.filter((s) => s === 200).length;
    // nginx's leaky bucket: 1 + burst 5 pass at once; one more may leak through if the burst spans a second.
    expect(ok).toBeGreaterThanOrEqual(6);
    expect(ok).toBeLessThanOrEqual(7);
    expect(statuses.filter((s) => s === 503).length).toBe(10 - ok);
  });

  it("whitelist-source-range answers 403; proxy-body-size answers 413", async () => {
    expect((await curl([...at("private.com"), `http://private.com:${ctl.http}/`])).status).toBe(403);
    const big = "x".repeat(2048);
    expect(
      (await curl([...at("small.com"), "--data-binary", big, `http://small.com:${ctl.http}/`])).status,
    ).toBe(413);
    expect(
      (
        await curl([
          ...at("small.com"),
          "-H",
          "Transfer-Encoding: chunked",
          "--data-binary",
          big,
          `http://small.com:${ctl.http}/`,
        ])
      ).status,
    ).toBe(413);
    const ok = await curl([...at("small.com"), "--data-binary", "hello", `http://small.com:${ctl.http}/`]);
    expect(JSON.parse(ok.body).body).toBe("hello");
  });

  it("passes WebSocket upgrades through", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${ctl.http}/chat`, { headers: { host: "ws.com" } });
    const reply = await new Promise<string>((resolve, reject) => {
      ws.on("open", () => ws.send("hello"));
      ws.on("message", (m) => resolve(m.toString()));
      ws.on("error", reject);
    });
    ws.close();
    expect(reply).toBe("echo: hello");
  });

  it("writes access log lines in ingress-nginx's format", async () => {
    await curl([
      ...at("plain.com"),
      "-A",
      "curl-test",
      "-e",
      "http://ref/",
      `http://plain.com:${ctl.http}/log-me`,
    ]);
    const line = ctl.accessLog.find((l) => l.includes("/log-me"))!;
    const m = ACCESS_LOG_PATTERN.exec(line);
    expect(m, line).not.toBeNull();
    expect(m![1]).toBe("127.0.0.1");
    expect(m![4]).toBe("GET /log-me HTTP/1.1");
    expect(m![5]).toBe("200");
    expect(m![7]).toBe("http://ref/");
    expect(m![8]).toBe("curl-test");
    expect(m![11]).toBe("default-web-80");
    expect(m![13]).toBe(`${web.ip}:${web.port}`);
    expect(m![16]).toBe("200");
  });

  it("answers malformed requests with 400 and keeps serving", async () => {
    const raw = (port: number, data: string | Buffer) =>
      new Promise<string>((resolve) => {
        const s = net.connect(port, "127.0.0.1", () => s.write(data));
        let out = "";
        s.on("data", (c) => (out += c.toString()));
        s.on("close", () => resolve(out));
        s.on("error", () => resolve(out));
        s.setTimeout(5000, () => s.destroy());
      });
    expect(await raw(ctl.http, "GARBAGE\r\n\r\n")).toMatch(/^HTTP\/1.1 400 Bad Request/);
    expect(await raw(ctl.http, "GET / HTTP/1.1\r\nHost: a\r\nX: " + "a".repeat(40_000) + "\r\n\r\n")).toMatch(
      /^HTTP\/1.1 400[\s\S]*Request Header Or Cookie Too Large/,
    );
    expect(await raw(ctl.https, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")).toContain(
      "400 The plain HTTP request was sent to HTTPS port",
    );
    await raw(ctl.https, Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]));
    const bad = await new Promise<string>((resolve) => {
      const s = tls.connect({
        port: ctl.https,
        host: "127.0.0.1",
        servername: "myapp.com",
        rejectUnauthorized: false,
        maxVersion: "TLSv1.1",
        minVersion: "TLSv1",
      });
      s.on("error", (e) => resolve(e.message));
      s.on("secureConnect", () => resolve("connected"));
    });
    expect(bad).not.toBe("connected");
    expect(
      await raw(ctl.http, "GET /../../x HTTP/1.1\r\nHost: plain.com\r\nConnection: close\r\n\r\n"),
    ).toMatch(/^HTTP\/1.1 400/);
    const r = await curl([...at("plain.com"), `http://plain.com:${ctl.http}/`]);
    expect(r.status).toBe(200);
  });

  it("counts requests in nginx_ingress_controller_requests", async () => {
    const text = await ctl.metrics.registry.metrics();
    expect(text).toMatch(/nginx_ingress_controller_requests\{[^}]*ingress="web-ingress"[^}]*status="200"/);
  });
});
