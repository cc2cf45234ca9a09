// The HTTPS server: authentication, the non-resource endpoints (health, version, discovery,
// OpenAPI, metrics) and the resource routes, every error answered as a Kubernetes Status.
import type { IncomingMessage } from "node:http";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import pino from "pino";
import { Counter, Gauge, Histogram, Registry as MetricsRegistry, collectDefaultMetrics } from "prom-client";
import { resourceTypes, type KubeObject } from "@klab/api";
import { bootstrap } from "./bootstrap.ts";
import { firstServiceIP, type ApiServerConfig } from "./config.ts";
import {
  aggregatedDiscovery,
  apiGroupList,
  apiResourceList,
  apiVersions,
  groupVersions,
} from "./http/discovery.ts";
import { wantsAggregatedDiscovery } from "./http/negotiate.ts";
import { buildOpenApiV3, openApiV2Json, openApiV2Protobuf } from "./http/openapi.ts";
import { parseResourcePath, ResourceHandler } from "./http/resources.ts";
import type { ApiServerOptions, Controllers, StartedContext, StorageView } from "./options.ts";
import { ensurePki, servingSans } from "./pki/pki.ts";
import { ensureAdminToken, tokenMatches, writeKubeconfig } from "./pki/token.ts";
import {
  authenticateServiceAccount,
  registerTokenRequest,
  serviceAccountAdmission,
  ServiceAccountTokens,
} from "./auth/serviceaccount.ts";
import { ApiError, errors, statusOf } from "./registry/errors.ts";
import { Registry } from "./registry/registry.ts";
import { Store } from "./storage/store.ts";

/** kube-apiserver's request body limit (--max-request-bytes default for JSON: 3 MiB). */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

export const VERSION_INFO = {
  major: "1",
  minor: "32",
  gitVersion: "v1.32.4+klab",
  gitCommit: "klab",
  gitTreeState: "clean",
  buildDate: "2026-01-01T00:00:00Z",
  goVersion: `node${process.versions.node}`,
  compiler: "tsx",
  platform: `${process.platform}/${process.arch === "x64" ? "amd64" : process.arch}`,
};

/** Answered without a token, as kube-apiserver's system:public-info-viewer role allows. */
const PUBLIC_PATHS = new Set(["/healthz", "/livez", "/readyz", "/version"]);

export interface ApiServer {
  url: string;
  port: number;
  token: string;
  caPem: string;
  kubeconfigPath: string;
  registry: Registry;
  close(): Promise<void>;
}

/**
 * Reads and drops the rest of an oversized body (up to a bound), so the client, still writing,
 * gets to read the 413 instead of a broken pipe; beyond the bound the connection is cut.
 */
function drainThenAnswer(req: IncomingMessage): void {
  let seen = 0;
  req.on("data", (c: Buffer) => {
    seen += c.length;
    if (seen > 4 * MAX_BODY_BYTES) req.socket.destroy();
  });
  req.resume();
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

function sendStatus(reply: FastifyReply, e: ApiError): FastifyReply {
  return reply.code(e.code).type("application/json").send(JSON.stringify(e.status));
}

export async function createApiServer(
  config: ApiServerConfig,
  options: ApiServerOptions = {},
): Promise<ApiServer> {
  const logger: Logger = options.logger ?? pino({ name: "apiserver" });
  const metrics = new MetricsRegistry();
  collectDefaultMetrics({ register: metrics });
  const requests = new Counter({
    name: "apiserver_request_total",
    help: "Requests by verb, resource and HTTP code",
    labelNames: ["verb", "resource", "code"],
    registers: [metrics],
  });
  const duration = new Histogram({
    name: "apiserver_request_duration_seconds",
    help: "Request latency (watches excluded)",
    labelNames: ["verb"],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [metrics],
  });
  const watchers = new Gauge({
    name: "apiserver_registered_watchers",
    help: "Open watches",
    registers: [metrics],
  });

  const store = new Store(config.stateDir, config.watchWindow);
  new Gauge({
    name: "apiserver_storage_objects",
    help: "Stored objects per resource",
    labelNames: ["resource"],
    registers: [metrics],
    collect() {
      for (const rt of resourceTypes) {
        const r = rt.group ? `${rt.plural}.${rt.group}` : rt.plural;
        this.set({ resource: r }, store.count(r));
      }
    },
  });
  new Gauge({
    name: "apiserver_resource_version",
    help: "The current global resourceVersion",
    registers: [metrics],
    collect() {
      this.set(store.resourceVersion);
    },
  });
  // the ServiceAccount admission plugin runs before the other pod hooks, as in kube-apiserver
  const podHooks = options.hooks?.pods;
  const hooks = {
    ...options.hooks,
    pods: [
      serviceAccountAdmission(() => storage),
      ...(Array.isArray(podHooks) ? podHooks : podHooks ? [podHooks] : []),
    ],
  };
  const registry = new Registry(store, hooks);
  const storage: StorageView = {
    list: (resource) => store.list(resource) as unknown as KubeObject[],
    get: (resource, namespace, name) =>
      store.get(resource, namespace, name) as unknown as KubeObject | undefined,
  };
  options.onStorageReady?.(storage);
  const serviceIP = firstServiceIP(config.serviceCidr);
  const token = ensureAdminToken(config.stateDir);
  const saTokens = new ServiceAccountTokens(config.stateDir);
  // admin token or a live service-account token: authenticated is allowed (no RBAC here)
  const authenticated = (header: string | undefined) =>
    tokenMatches(token, header) || authenticateServiceAccount(saTokens, storage, header) !== undefined;
  const pki = await ensurePki(
    config.stateDir,
    servingSans(serviceIP, config.advertiseAddress, config.extraSans),
  );
  const openapi = buildOpenApiV3(resourceTypes, VERSION_INFO.gitVersion);
  const handler = new ResourceHandler({ registry, store, onWatch: (d) => watchers.inc(d) });

  const app: FastifyInstance = Fastify({
    https: { key: pki.keyPem, cert: pki.certPem },
    bodyLimit: MAX_BODY_BYTES,
    logger: false,
    // kube object names and long selectors make long URLs; Go clients send up to ~8k.
    routerOptions: { maxParamLength: 8192 },
    return503OnClosing: true,
    forceCloseConnections: true,
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: MAX_BODY_BYTES }, (_req, body, done) =>
    done(null, body),
  );

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (err instanceof ApiError) return sendStatus(reply, err);
    if (err.statusCode === 413 || err.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      // fastify asks to close the connection, which breaks the pipe of a client still writing.
      reply.removeHeader("connection");
      drainThenAnswer(req.raw);
      return sendStatus(reply, errors.tooLarge(MAX_BODY_BYTES));
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return sendStatus(reply, new ApiError(statusOf(err.statusCode, "BadRequest", err.message)));
    }
    logger.error({ err, method: req.method, url: req.url }, "request failed");
    return sendStatus(reply, errors.internal(err.message));
  });
  app.setNotFoundHandler((_req, reply) =>
    reply.code(404).type("text/plain; charset=utf-8").send("404 page not found\n"),
  );

  app.addHook("onRequest", async (req, reply) => {
    const path = req.url.split("?")[0]!;
    if (PUBLIC_PATHS.has(path)) return;
    if (!authenticated(req.headers.authorization)) {
      requests.inc({ verb: req.method, resource: "", code: 401 });
      return sendStatus(reply, errors.unauthorized());
    }
  });
  app.addHook("onResponse", async (req, reply) => {
    duration.observe({ verb: req.method }, reply.elapsedTime / 1000);
    logger.debug(
      { method: req.method, url: req.url, code: reply.statusCode, ms: reply.elapsedTime },
      "request",
    );
    requests.inc({
      verb: req.method,
      resource: (req as FastifyRequest & { klabResource?: string }).klabResource ?? "",
      code: reply.statusCode,
    });
  });

  const ok = async (_req: FastifyRequest, reply: FastifyReply) =>
    reply.type("text/plain; charset=utf-8").send("ok");
  app.get("/healthz", ok);
  app.get("/livez", ok);
  app.get("/readyz", ok);
  app.get("/version", async (_req, reply) =>
    reply.type("application/json").send(JSON.stringify(VERSION_INFO, null, 2)),
  );
  app.get("/metrics", async (_req, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));
  app.get("/", async (_req, reply) => {
    const paths = [
      "/api",
      "/api/v1",
      "/apis",
      "/healthz",
      "/livez",
      "/metrics",
      "/openapi/v3",
      "/readyz",
      "/version",
    ];
    for (const g of groupVersions(resourceTypes))
      if (g.group) for (const v of g.versions) paths.push(`/apis/${g.group}`, `/apis/${g.group}/${v}`);
    return reply
      .type("application/json")
      .send(JSON.stringify({ paths: [...new Set(paths)].sort() }, null, 2));
  });

  const serverAddress = `${config.advertiseAddress}:${config.port}`;
  const discovery = (core: boolean) => async (req: FastifyRequest, reply: FastifyReply) => {
    const v = wantsAggregatedDiscovery(req.headers.accept);
    if (v) {
      return reply
        .type(`application/json;g=apidiscovery.k8s.io;v=${v};as=APIGroupDiscoveryList`)
        .header("vary", "Accept")
        .send(JSON.stringify(aggregatedDiscovery(resourceTypes, core, `apidiscovery.k8s.io/${v}`)));
    }
    return reply
      .type("application/json")
      .header("vary", "Accept")
      .send(JSON.stringify(core ? apiVersions(serverAddress) : apiGroupList(resourceTypes)));
  };
  app.get("/api", discovery(true));
  app.get("/apis", discovery(false));

  app.get("/openapi/v2", async (req, reply) => {
    if ((req.headers.accept ?? "").includes("application/com.github.proto-openapi.spec.v2")) {
      return reply
        .type("application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
        .send(openApiV2Protobuf(VERSION_INFO.gitVersion));
    }
    return reply.type("application/json").send(JSON.stringify(openApiV2Json(VERSION_INFO.gitVersion)));
  });
  app.get("/openapi/v3", async (_req, reply) =>
    reply.type("application/json").send(JSON.stringify(openapi.index)),
  );
  app.get("/openapi/v3/*", async (req, reply) => {
    const doc = openapi.docs.get((req.params as { "*": string })["*"]);
    if (!doc) return reply.code(404).type("text/plain; charset=utf-8").send("404 page not found\n");
    return reply
      .type("application/json")
      .header("cache-control", "public, immutable")
      .send(JSON.stringify(doc));
  });

  if (options.routes) {
    await options.routes(app, {
      storage,
      token,
      caPem: pki.caPem,
      authorize: (req) => authenticated(req.headers.authorization),
    });
  }

  registerTokenRequest(app, saTokens, storage);

  const ALL = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] as const;
  const resourceRoute = (group: string | undefined) => async (req: FastifyRequest, reply: FastifyReply) => {
    const rest = (req.params as { "*"?: string })["*"] ?? "";
    const segs = rest.split("/").map((s) => decodeURIComponent(s));
    let g: string;
    let v: string;
    let tail: string[];
    if (group === undefined) {
      [g, v] = ["", "v1"];
      tail = segs;
    } else {
      g = segs[0] ?? "";
      v = segs[1] ?? "";
      tail = segs.slice(2);
    }
    if (tail.length === 0 || (tail.length === 1 && tail[0] === "")) {
      if (req.method !== "GET") throw errors.methodNotAllowed();
      if (group !== undefined && v === "") {
        const gv = groupVersions(resourceTypes).find((x) => x.group === g);
        if (!gv) throw errors.resourceNotFound();
        const versions = gv.versions.map((x) => ({ groupVersion: `${g}/${x}`, version: x }));
        return reply.type("application/json").send(
          JSON.stringify({
            kind: "APIGroup",
            apiVersion: "v1",
            name: g,
            versions,
            preferredVersion: versions[0],
          }),
        );
      }
      const list = apiResourceList(resourceTypes, g, v);
      if (!list) throw errors.resourceNotFound();
      return reply.type("application/json").send(JSON.stringify(list));
    }
    const p = parseResourcePath(g, v, tail);
    if (!p) throw errors.resourceNotFound();
    (req as FastifyRequest & { klabResource?: string }).klabResource = p.plural;
    return handler.handle(req, reply, p);
  };
  app.route({ method: [...ALL], url: "/api/v1/*", handler: resourceRoute(undefined) });
  app.route({ method: [...ALL], url: "/api/v1", handler: resourceRoute(undefined) });
  app.route({ method: [...ALL], url: "/apis/*", handler: resourceRoute("") });

  await app.listen({ port: config.port, host: config.bind });
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : config.port;
  // Synchronous, so it completes before the first request is read; the kubernetes Endpoints
  // must name the port actually bound (config.port may be 0).
  bootstrap(registry, { advertiseAddress: config.advertiseAddress, port, serviceIP });
  const host = config.bind === "0.0.0.0" ? "127.0.0.1" : config.bind;
  const url = `https://${host}:${port}`;
  const kubeconfigPath = writeKubeconfig(config.stateDir, url, pki.caPem, token);
  logger.info(
    { url, stateDir: config.stateDir, resourceVersion: store.resourceVersion },
    "apiserver listening",
  );

  let controllers: Controllers | void = undefined;
  if (options.onStarted) {
    const ctx: StartedContext = { url, token, caPem: pki.caPem, kubeconfigPath, config, logger, metrics };
    controllers = await options.onStarted(ctx);
  }

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    token,
    caPem: pki.caPem,
    kubeconfigPath,
    registry,
    close() {
      closing ??= (async () => {
        // Controllers stop first, but a client of theirs still waiting on a watch must not hold the
        // shutdown: after a bound the server closes, which ends every connection, theirs too.
        const stopping = controllers ? Promise.resolve().then(() => controllers!.stop()) : undefined;
        stopping?.catch((err: unknown) => logger.error({ err }, "controllers failed to stop"));
        if (stopping) await Promise.race([stopping, delay(3000)]);
        await app.close();
        if (stopping) await Promise.race([stopping, delay(2000)]);
        store.close();
        logger.info("apiserver stopped");
      })();
      return closing;
    },
  };
}
