/**
 * The ingress-nginx-controller process: configuration → informers → buildRoutes → servers.
 * SIGTERM stops accepting, lets requests in flight finish, and exits.
 */
import pino from "pino";
import { KubeClient, Informer } from "@klab/client";
import type { EndpointSlice, Ingress, IngressClass, Node, Secret, Service } from "@klab/api";
import { DEFAULTS } from "./annotations/index.ts";
import { fakeCertificate } from "./certificates.ts";
import { IngressController } from "./controller.ts";
import { startHealthServer } from "./http/health.ts";
import { IngressMetrics } from "./http/metrics.ts";
import { batchedLines } from "./http/access-log.ts";
import { IngressServer } from "./http/server.ts";
import { buildRoutes } from "./build.ts";
import type { ControllerConfig } from "./model.ts";

export interface IngressOptions {
  /** kubeconfig path; without it, the in-cluster service account */
  kubeconfig?: string;
  httpPort: number;
  httpsPort: number;
  healthzPort: number;
  address: string;
  ingressClass: string;
  controllerClass: string;
  watchIngressWithoutClass: boolean;
  publishService?: string;
  /** write Ingress status (off for a second controller on the same cluster) */
  updateStatus: boolean;
}

export const DEFAULT_OPTIONS: IngressOptions = {
  httpPort: 80,
  httpsPort: 443,
  healthzPort: 10254,
  address: "0.0.0.0",
  ingressClass: "nginx",
  controllerClass: "k8s.io/ingress-nginx",
  watchIngressWithoutClass: false,
  publishService: "ingress-nginx/ingress-nginx-controller",
  updateStatus: true,
};

export interface RunningIngress {
  ports: { http: number; https: number; healthz: number };
  stop(): Promise<void>;
}

export async function runIngressController(opts: IngressOptions): Promise<RunningIngress> {
  const logger = pino({ name: "ingress-nginx-controller" }, pino.destination(2));
  const client = opts.kubeconfig ? KubeClient.fromKubeconfig(opts.kubeconfig) : KubeClient.inCluster();
  const defaultCertificate = await fakeCertificate();
  const config: ControllerConfig = {
    controllerClass: opts.controllerClass,
    ingressClass: opts.ingressClass,
    watchIngressWithoutClass: opts.watchIngressWithoutClass,
    strictValidatePathType: true,
    defaultCertificate,
    annotationDefaults: DEFAULTS,
  };
  const metrics = new IngressMetrics({
    controllerClass: opts.controllerClass,
    controllerNamespace: process.env.POD_NAMESPACE ?? "ingress-nginx",
    controllerPod: process.env.POD_NAME ?? "ingress-nginx-controller",
  });
  // Access log lines leave through an asynchronous writer: a blocking write per request (what
  // process.stdout does on a file or a pipe) would stall the proxy behind the log's reader.
  const accessLog = pino.destination({ dest: 1, sync: false });
  const accessLines = batchedLines(accessLog);
  const server = new IngressServer({
    table: buildRoutes([], [], [], [], [], config),
    logger,
    metrics,
    accessLog: accessLines,
    httpPort: opts.httpPort,
    httpsPort: opts.httpsPort,
    address: opts.address,
  });
  const controller = new IngressController({
    sources: {
      ingresses: new Informer<Ingress>(client, "networking.k8s.io/v1", "ingresses"),
      ingressClasses: new Informer<IngressClass>(client, "networking.k8s.io/v1", "ingressclasses"),
      services: new Informer<Service>(client, "v1", "services"),
      endpointSlices: new Informer<EndpointSlice>(client, "discovery.k8s.io/v1", "endpointslices"),
      secrets: new Informer<Secret>(client, "v1", "secrets"),
      nodes: new Informer<Node>(client, "v1", "nodes"),
    },
    config,
    apply: (t) => server.setTable(t),
    statusWriter: opts.updateStatus ? client : undefined,
    publishService: opts.publishService,
    nodeName: process.env.NODE_NAME,
    logger,
  });
  const health = await startHealthServer(metrics, opts.healthzPort, opts.address, () => controller.synced);
  // Serve only once the caches are whole: an empty table would answer 404 to everything.
  await controller.start();
  const ports = await server.start();
  logger.info({ http: ports.http, https: ports.https, healthz: health.port }, "ingress controller listening");

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      logger.info("shutting down");
      controller.stop();
      await server.stop(10_000);
      try {
        accessLines.flush();
        accessLog.flushSync();
      } catch {
        /* the reader of stdout is gone */
      }
      await health.close();
      await client.close();
    })());
  process.once("SIGTERM", () => void stop().then(() => process.exit(0)));
  process.once("SIGINT", () => void stop().then(() => process.exit(0)));
  return { ports: { ...ports, healthz: health.port }, stop };
}
