import { EventEmitter } from "node:events";
import { beforeAll, describe, expect, it } from "vitest";
import pino from "pino";
import type { KubeObject, Service } from "@klab/api";
import { IngressController, type Source } from "./controller.ts";
import { selfSigned } from "./certificates.ts";
import { controllerConfig, endpointSlice, ingress, ingressClass, service } from "./fixtures.ts";
import type { ControllerConfig, RouteTable } from "./model.ts";
import { route } from "./route.ts";

/** An in-memory cache with the informer's surface. */
class MemorySource<T extends KubeObject> implements Source<T> {
  hasSynced = false;
  private readonly events = new EventEmitter();
  constructor(public items: T[] = []) {}
  on(event: string, fn: (...args: never[]) => void): this {
    this.events.on(event, fn as (...args: unknown[]) => void);
    return this;
  }
  emit(event: string, ...args: unknown[]): void {
    this.events.emit(event, ...args);
  }
  list(): T[] {
    return this.items;
  }
  async start(): Promise<void> {
    this.hasSynced = true;
  }
  stop(): void {}
  set(items: T[]): void {
    this.items = items;
    this.emit("update", items[0], items[0]);
  }
}

let config: ControllerConfig;
beforeAll(async () => {
  config = controllerConfig(
    await selfSigned({ commonName: "fake", dnsNames: ["ingress.local"], keyType: "ecdsa" }),
  );
});

const settle = () => new Promise((r) => setTimeout(r, 30));

describe("the control loop", () => {
  it("rebuilds on events, swaps the table, writes status, and shrugs off watch errors", async () => {
    const lb: Service = {
      ...service("ingress-nginx-controller", { namespace: "ingress-nginx" }),
      status: { loadBalancer: { ingress: [{ ip: "172.29.255.200" }] } },
    };
    const sources = {
      ingresses: new MemorySource([
        ingress("web", { rules: [{ host: "a.com", paths: [{ path: "/", service: "web" }] }] }),
      ]),
      ingressClasses: new MemorySource([ingressClass("nginx")]),
      services: new MemorySource([service("web"), lb]),
      endpointSlices: new MemorySource([endpointSlice("web", [{ ip: "10.244.0.5" }], { port: 8080 })]),
      secrets: new MemorySource([]),
      nodes: new MemorySource([]),
    };
    const tables: RouteTable[] = [];
    const written: KubeObject[] = [];
    const ctl = new IngressController({
      sources,
      config,
      apply: (t) => tables.push(t),
      statusWriter: { updateStatus: async <T extends KubeObject>(o: T) => (written.push(o), o) },
      publishService: "ingress-nginx/ingress-nginx-controller",
      logger: pino({ level: "silent" }),
      syncDelayMs: 1,
    });
    await ctl.start();
    await settle();
    const reach = () => {
      const d = route(tables[tables.length - 1], {
        method: "GET",
        host: "a.com",
        target: "/",
        headers: {},
        scheme: "http",
        remoteAddr: "1.2.3.4",
        random: 0,
      });
      return d.kind === "proxy" ? d.upstream.endpoints.map((e) => e.address) : d.status;
    };
    expect(reach()).toEqual(["10.244.0.5:8080"]);
    expect(written).toHaveLength(1);
    expect((written[0] as { status?: unknown }).status).toEqual({
      loadBalancer: { ingress: [{ ip: "172.29.255.200" }] },
    });

    sources.endpointSlices.emit("error", new Error("watch broke"));
    sources.endpointSlices.set([endpointSlice("web", [{ ip: "10.244.0.6" }], { port: 8080 })]);
    await settle();
    expect(reach()).toEqual(["10.244.0.6:8080"]);
    sources.endpointSlices.set([]);
    await settle();
    expect(reach()).toBe(503);
    ctl.stop();
  });
});
