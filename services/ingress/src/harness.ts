/**
 * For end-to-end tests and the benchmark: real upstream HTTP servers on loopback addresses and a
 * controller serving a RouteTable built from fixture objects through the same buildRoutes.
 */
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { PassThrough } from "node:stream";
import pino from "pino";
import type { EndpointSlice, Ingress, IngressClass, Secret, Service } from "@klab/api";
import { buildRoutes } from "./build.ts";
import { fakeCertificate } from "./certificates.ts";
import { controllerConfig, ingressClass } from "./fixtures.ts";
import type { ControllerConfig } from "./model.ts";
import { IngressMetrics } from "./http/metrics.ts";
import { IngressServer } from "./http/server.ts";
import type { CertificateMaterial } from "./tls.ts";

export interface Upstream {
  name: string;
  ip: string;
  port: number;
  server: http.Server;
  /** requests seen, newest last */
  seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders }>;
  close(): Promise<void>;
}

/** The default handler answers JSON: which upstream, what it received. */
export function echo(name: string) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.stringify({
        upstream: name,
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      });
      res.writeHead(200, { "content-type": "application/json", server: "upstream-server" });
      res.end(body);
    });
  };
}

export async function startUpstream(
  name: string,
  opts: { ip?: string; port?: number; handler?: (req: IncomingMessage, res: ServerResponse) => void } = {},
): Promise<Upstream> {
  const seen: Upstream["seen"] = [];
  const handler = opts.handler ?? echo(name);
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
    handler(req, res);
  });
  server.keepAliveTimeout = 65_000;
  const ip = opts.ip ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, ip, () => resolve());
  });
  return {
    name,
    ip,
    port: (server.address() as AddressInfo).port,
    server,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Several upstreams on one port (as one EndpointSlice port) on 127.0.0.2, .3, … */
export async function startUpstreamGroup(
  name: string,
  count: number,
  handler?: (n: number) => (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Upstream[]> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = await startUpstream(`${name}-0`, { ip: "127.0.0.2", handler: handler?.(0) });
    const group = [first];
    try {
      for (let i = 1; i < count; i++)
        group.push(
          await startUpstream(`${name}-${i}`, {
            ip: `127.0.0.${2 + i}`,
            port: first.port,
            handler: handler?.(i),
          }),
        );
      return group;
    } catch {
      await Promise.all(group.map((u) => u.close()));
    }
  }
  throw new Error("could not find one free port on several loopback addresses");
}

export interface Objects {
  ingresses: Ingress[];
  services: Service[];
  slices: EndpointSlice[];
  secrets?: Secret[];
  classes?: IngressClass[];
}

export interface Controller {
  server: IngressServer;
  http: number;
  https: number;
  config: ControllerConfig;
  fakeCertificate: CertificateMaterial;
  /** access log lines written so far */
  accessLog: string[];
  metrics: IngressMetrics;
  apply(objects: Objects): void;
  close(): Promise<void>;
}

let fakeOnce: Promise<CertificateMaterial> | undefined;

export async function startController(
  objects: Objects,
  opts: { accessLog?: boolean } = {},
): Promise<Controller> {
  fakeOnce ??= fakeCertificate();
  const fake = await fakeOnce;
  const config = controllerConfig(fake);
  const build = (o: Objects) =>
    buildRoutes(
      o.ingresses,
      o.classes ?? [ingressClass("nginx")],
      o.services,
      o.slices,
      o.secrets ?? [],
      config,
    );
  const lines: string[] = [];
  let stream: PassThrough | null = null;
  if (opts.accessLog !== false) {
    stream = new PassThrough();
    let buf = "";
    stream.on("data", (c: Buffer) => {
      buf += c.toString("utf8");
      let nl;
      while ((nl = buf.indexOf("\n")) !== -1) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
  }
  const metrics = new IngressMetrics({
    controllerClass: "k8s.io/ingress-nginx",
    controllerNamespace: "ingress-nginx",
    controllerPod: "test",
  });
  const server = new IngressServer({
    table: build(objects),
    logger: pino({ level: "silent" }),
    metrics,
    accessLog: stream,
    httpPort: 0,
    httpsPort: 0,
    address: "127.0.0.1",
  });
  const ports = await server.start();
  return {
    server,
    http: ports.http,
    https: ports.https,
    config,
    fakeCertificate: fake,
    accessLog: lines,
    metrics,
    apply: (o) => server.setTable(build(o)),
    close: () => server.stop(2000),
  };
}
