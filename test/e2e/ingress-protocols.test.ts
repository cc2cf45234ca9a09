import { afterAll, beforeAll, expect, it } from "vitest";
import https from "node:https";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { describeWith } from "../support/prereq.ts";
import { curl } from "./ingress-support.ts";
import { startController, type Controller } from "../../services/ingress/src/harness.ts";
import { endpointSlice, ingress, service } from "../../services/ingress/src/fixtures.ts";
import { selfSigned } from "../../services/ingress/src/certificates.ts";
import { startHealthServer, type HealthServer } from "../../services/ingress/src/http/health.ts";

const A = "nginx.ingress.kubernetes.io/";

describeWith({ tools: ["curl"] }, "ingress backend protocols and the controller's health port", () => {
  let ctl: Controller;
  let tlsUpstream: https.Server;
  let grpcUpstream: http2.Http2Server;
  let health: HealthServer;

  beforeAll(async () => {
    const cert = await selfSigned({ commonName: "pod", dnsNames: ["pod"], keyType: "ecdsa" });
    tlsUpstream = https.createServer({ key: cert.keyPem, cert: cert.certPem }, (req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(
        `tls upstream saw ${req.method} ${req.url} over ${(req.socket as import("node:tls").TLSSocket).getProtocol()}`,
      );
    });
    // A gRPC-shaped h2c server: answers with a body and a grpc-status trailer.
    grpcUpstream = http2.createServer();
    grpcUpstream.on("stream", (stream, headers) => {
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0", "grpc-message": "OK" }));
      stream.end(Buffer.from(`h2c ${headers[":path"]} ${headers[":authority"]} te=${headers["te"]}`));
    });
    await new Promise<void>((r) => tlsUpstream.listen(0, "127.0.0.1", () => r()));
    await new Promise<void>((r) => grpcUpstream.listen(0, "127.0.0.1", () => r()));
    const tlsPort = (tlsUpstream.address() as AddressInfo).port;
    const grpcPort = (grpcUpstream.address() as AddressInfo).port;
    ctl = await startController({
      services: [service("secure", { port: 443 }), service("grpc", { port: 50051 })],
      slices: [
        endpointSlice("secure", [{ ip: "127.0.0.1" }], { port: tlsPort }),
        endpointSlice("grpc", [{ ip: "127.0.0.1" }], { port: grpcPort }),
      ],
      ingresses: [
        ingress("secure", {
          annotations: { [A + "backend-protocol"]: "HTTPS" },
          rules: [{ host: "secure.com", paths: [{ path: "/", service: "secure", port: 443 }] }],
        }),
        ingress("grpc", {
          annotations: { [A + "backend-protocol"]: "GRPC" },
          rules: [{ host: "grpc.com", paths: [{ path: "/", service: "grpc", port: 50051 }] }],
        }),
      ],
    });
    health = await startHealthServer(ctl.metrics, 0, "127.0.0.1", () => true);
  });

  afterAll(async () => {
    await health?.close();
    await ctl?.close();
    tlsUpstream?.closeAllConnections();
    tlsUpstream?.close();
    grpcUpstream?.close();
  });

  it("backend-protocol HTTPS speaks TLS to the pod", async () => {
    const r = await curl([
      "--resolve",
      `secure.com:${ctl.http}:127.0.0.1`,
      `http://secure.com:${ctl.http}/x`,
    ]);
    expect(r.status).toBe(200);
    expect(r.body).toMatch(/^tls upstream saw GET \/x over TLSv1\.[23]$/);
  });

  it("backend-protocol GRPC proxies HTTP/2 streams with their trailers", async () => {
    const client = http2.connect(`https://127.0.0.1:${ctl.https}`, {
      rejectUnauthorized: false,
      servername: "grpc.com",
    });
    const stream = client.request({
      ":method": "POST",
      ":path": "/helloworld.Greeter/SayHello",
      ":authority": "grpc.com",
      "content-type": "application/grpc",
      te: "trailers",
    });
    stream.end(Buffer.alloc(5));
    const result = await new Promise<{ status: number; body: string; trailers: http2.IncomingHttpHeaders }>(
      (resolve, reject) => {
        let status = 0;
        let body = "";
        let trailers: http2.IncomingHttpHeaders = {};
        stream.on("response", (h) => (status = Number(h[":status"])));
        stream.on("trailers", (t) => (trailers = t));
        stream.on("data", (c: Buffer) => (body += c.toString()));
        stream.on("end", () => resolve({ status, body, trailers }));
        stream.on("error", reject);
      },
    );
    client.close();
    expect(result.status).toBe(200);
    expect(result.body).toBe("h2c /helloworld.Greeter/SayHello grpc.com te=trailers");
    expect(result.trailers["grpc-status"]).toBe("0");
  });

  it("serves /healthz and Prometheus /metrics", async () => {
    const h = await curl([`http://127.0.0.1:${health.port}/healthz`]);
    expect([h.status, h.body]).toEqual([200, "ok"]);
    await curl(["--resolve", `secure.com:${ctl.http}:127.0.0.1`, `http://secure.com:${ctl.http}/`]);
    const m = await curl([`http://127.0.0.1:${health.port}/metrics`]);
    expect(m.body).toMatch(/^nginx_ingress_controller_requests\{.*ingress="secure".*status="200".*\} \d+$/m);
    expect(m.body).toContain("nginx_ingress_controller_config_last_reload_successful");
  });
});
