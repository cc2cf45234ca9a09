import { mkdtempSync, rmSync } from "node:fs";
import https from "node:https";
import tls from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { createKubeletServer } from "./server.ts";
import { ensureServingCert } from "../node/pki.ts";
import { Kubelet } from "../runtime/kubelet.ts";
import { NodeRuntime, type PodAPI } from "../runtime/node-runtime.ts";
import { BridgeNetwork } from "../sandbox/pod-network.ts";

const TOKEN = "kubelet-test-token";

describe("kubelet API refuses bad requests with Status errors and keeps serving", () => {
  let dir: string;
  let server: https.Server;
  let port: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "klabt-kubelet-"));
    const log = pino({ level: "silent" });
    const api: PodAPI = {
      updatePodStatus: async () => undefined,
      deletePodFinal: async () => undefined,
      services: () => [],
      configMap: async () => undefined,
      secret: async () => undefined,
      event: () => undefined,
    };
    const cfg = {
      nodeName: "n",
      nodeIP: "127.0.0.1",
      stateDir: dir,
      clusterDNS: ["10.96.0.10"],
      clusterDomain: "cluster.local",
      netnsPrefix: "klabt",
      network: { bridge: "cbr0", routes: [], mtu: 1500 },
      resolvConfPath: "/etc/resolv.conf",
      hostsPath: "/etc/hosts",
      programs: {},
    };
    const rt = new NodeRuntime(cfg, api, log, new BridgeNetwork(cfg.network));
    const cert = await ensureServingCert(dir, "n", "127.0.0.1");
    server = createKubeletServer({
      kubelet: new Kubelet(rt),
      log,
      cert: cert.certPem,
      key: cert.keyPem,
      tokens: [TOKEN],
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  const get = (path: string, token?: string) =>
    new Promise<{ code: number; body: string }>((resolve, reject) => {
      const req = https.get(
        {
          host: "127.0.0.1",
          port,
          path,
          rejectUnauthorized: false,
          headers: token ? { authorization: `Bearer ${token}` } : {},
        },
        (res) => {
          let body = "";
          res.on("data", (d) => (body += d));
          res.on("end", () => resolve({ code: res.statusCode ?? 0, body }));
        },
      );
      req.on("error", reject);
    });

  it("answers 401 without the token, healthz without it", async () => {
    expect((await get("/containerLogs/default/p/c")).code).toBe(401);
    expect(await get("/healthz")).toEqual({ code: 200, body: "ok" });
  });
  it("answers 404 Status for unknown endpoints and pods", async () => {
    const r = await get("/nope", TOKEN);
    expect(r.code).toBe(404);
    expect(JSON.parse(r.body)).toMatchObject({ kind: "Status", status: "Failure", reason: "NotFound" });
    expect(JSON.parse((await get("/containerLogs/default/missing/c", TOKEN)).body).message).toBe(
      'pod "missing" not found on this node',
    );
    expect((await get("/containerLogs/%E0%A4%A/x/y", TOKEN)).code).toBeGreaterThanOrEqual(400);
  });
  it("refuses an exec without a WebSocket upgrade and an unknown subprotocol", async () => {
    expect((await get("/exec/default/p/c?command=ls", TOKEN)).code).toBe(400);
    const err = await new Promise<string>((resolve) => {
      const ws = new WebSocket(`wss://127.0.0.1:${port}/exec/default/p/c?command=ls`, ["bogus.k8s.io"], {
        rejectUnauthorized: false,
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      ws.on("unexpected-response", (_req, res) => resolve(String(res.statusCode)));
      ws.on("error", (e) => resolve(e.message));
    });
    expect(err).toBe("404");
  });
  it("survives random bytes on its TLS port", async () => {
    await new Promise<void>((resolve) => {
      const s = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
        s.write(Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131) % 256)));
        s.end();
      });
      s.on("error", () => resolve());
      s.on("close", () => resolve());
    });
    expect((await get("/healthz")).code).toBe(200);
  });
});
