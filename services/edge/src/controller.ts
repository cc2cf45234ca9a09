/**
 * The cloud controller of the lab: level-triggered over Services and Nodes, it
 *  - assigns LoadBalancer addresses and writes them to Service status,
 *  - holds those addresses on the edge's interface and listens on them (the Forwarder),
 *  - keeps a route to every node's podCIDR through that node (the cloud's VPC routes), so the
 *    emulated internet can answer pods without NAT.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Logger } from "pino";
import type { Node, Service } from "@klab/api";
import { ApiError, Informer, type KubeClient } from "@klab/client";
import { assignAddresses, inPool, serviceKey, type AddressPool } from "./pool.ts";
import { desiredListeners } from "./listeners.ts";
import type { Forwarder, Listen } from "./forwarder.ts";

const run = promisify(execFile);

export interface Publish {
  listen: Listen;
  /** "namespace/name" of a LoadBalancer Service */
  service: string;
  port: number;
}

export interface EdgeOptions {
  pool: AddressPool;
  /** Interface that holds LoadBalancer addresses; undefined leaves addresses to the caller. */
  interface?: string;
  /** Program routes to nodes' podCIDRs. */
  manageRoutes: boolean;
  publish: Publish[];
}

export class EdgeController {
  private readonly services: Informer<Service>;
  private readonly nodes: Informer<Node>;
  private pending?: NodeJS.Timeout;
  private running = Promise.resolve();
  private held = new Set<string>();

  constructor(
    private readonly client: KubeClient,
    private readonly forwarder: Forwarder,
    private readonly log: Logger,
    private readonly options: EdgeOptions,
  ) {
    this.services = new Informer<Service>(client, "v1", "services");
    this.nodes = new Informer<Node>(client, "v1", "nodes");
    for (const informer of [this.services, this.nodes] as Informer[]) {
      informer.on("add", () => this.schedule());
      informer.on("update", () => this.schedule());
      informer.on("delete", () => this.schedule());
      informer.on("error", (err) => this.log.warn({ err: err.message }, "watch failed; retrying"));
    }
  }

  async start(): Promise<void> {
    await Promise.all([this.services.start(), this.nodes.start()]);
    this.forwarder.start();
    this.schedule(0);
    // Level-triggered: resync periodically even without events.
    setInterval(() => this.schedule(), 30_000).unref();
  }

  stop(): void {
    this.services.stop();
    this.nodes.stop();
    if (this.pending) clearTimeout(this.pending);
  }

  private schedule(delayMs = 100): void {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.running = this.running
        .then(() => this.sync())
        .catch((err: Error) => {
          this.log.error({ err: err.message }, "sync failed; retrying");
          this.schedule(1_000);
        });
    }, delayMs);
  }

  /** Exposed for tests: one full reconcile. */
  async sync(): Promise<void> {
    const services = this.services.list();
    const nodes = this.nodes.list();
    const { addresses, pending } = assignAddresses(services, this.options.pool);
    for (const [key, reason] of pending) this.log.warn({ service: key, reason }, "no LoadBalancer address");

    if (this.options.interface) await this.holdAddresses(new Set(addresses.values()));
    if (this.options.manageRoutes) await this.routePodCIDRs(nodes);

    const specs = desiredListeners(services, nodes, addresses);
    const listeners = specs.map((s) => ({ ...s, listen: { host: s.address, port: s.port } as Listen }));
    for (const p of this.options.publish) {
      const spec = specs.find((s) => s.service === p.service && s.port === p.port);
      const id = `publish:${JSON.stringify(p.listen)}`;
      listeners.push({
        id,
        service: p.service,
        listen: p.listen,
        targets: spec?.targets ?? [],
        address: "",
        port: p.port,
      });
    }
    await this.forwarder.apply(listeners);

    for (const svc of services) await this.writeStatus(svc, addresses.get(serviceKey(svc)));
  }

  private async writeStatus(svc: Service, ip: string | undefined): Promise<void> {
    const current = (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip);
    // Only LoadBalancer Services carry our address; a Service that stopped being one gives it back.
    const wanted = svc.spec?.type === "LoadBalancer" && ip ? [ip] : [];
    if (svc.spec?.type !== "LoadBalancer" && !current.some((c) => c && inPool(this.options.pool, c))) return;
    if (JSON.stringify(current) === JSON.stringify(wanted)) return;
    try {
      await this.client.patch(
        "v1",
        "services",
        svc.metadata.namespace,
        svc.metadata.name!,
        {
          status: {
            loadBalancer: { ingress: wanted.length ? wanted.map((w) => ({ ip: w, ipMode: "VIP" })) : null },
          },
        },
        "merge",
        "status",
      );
      this.log.info(
        { service: serviceKey(svc), ip },
        ip ? "LoadBalancer address assigned" : "LoadBalancer address released",
      );
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 404)) throw err;
    }
  }

  private async holdAddresses(wanted: Set<string>): Promise<void> {
    const dev = this.options.interface!;
    for (const ip of wanted) {
      if (this.held.has(ip)) continue;
      await run("ip", ["addr", "replace", `${ip}/32`, "dev", dev]);
      this.held.add(ip);
    }
    for (const ip of [...this.held]) {
      if (wanted.has(ip)) continue;
      await run("ip", ["addr", "del", `${ip}/32`, "dev", dev]).catch(() => undefined);
      this.held.delete(ip);
    }
  }

  private async routePodCIDRs(nodes: Node[]): Promise<void> {
    for (const node of nodes) {
      const via = node.status?.addresses?.find((a) => a.type === "InternalIP")?.address;
      const cidr = node.spec?.podCIDR;
      if (!via || !cidr) continue;
      await run("ip", ["route", "replace", cidr, "via", via]).catch((err: Error) =>
        this.log.warn({ node: node.metadata.name, cidr, err: err.message }, "cannot route podCIDR"),
      );
    }
  }
}
