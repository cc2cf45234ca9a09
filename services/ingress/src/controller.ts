/**
 * The control loop: informer events mark the configuration dirty; a short-delayed sync rebuilds
 * the whole RouteTable with buildRoutes and swaps it into the server in one step (kube-proxy's
 * pattern), then writes Ingress status. Level-triggered: every sync starts from the caches.
 */
import type { EndpointSlice, Ingress, IngressClass, KubeObject, Node, Secret, Service } from "@klab/api";
import type { Logger } from "pino";
import { buildRoutes } from "./build.ts";
import type { ControllerConfig, RouteTable } from "./model.ts";
import { statusAddresses, withStatus } from "./status.ts";

/** What the controller needs of an informer (@klab/client's Informer fits). */
export interface Source<T extends KubeObject> {
  list(): T[];
  start(): Promise<void>;
  stop(): void;
  readonly hasSynced: boolean;
  on(event: "add" | "update" | "delete" | "sync" | "error", fn: (...args: never[]) => void): unknown;
}

export interface Sources {
  ingresses: Source<Ingress>;
  ingressClasses: Source<IngressClass>;
  services: Source<Service>;
  endpointSlices: Source<EndpointSlice>;
  secrets: Source<Secret>;
  nodes: Source<Node>;
}

export interface StatusWriter {
  updateStatus<T extends KubeObject>(obj: T): Promise<T>;
}

export interface ControllerOptions {
  sources: Sources;
  config: ControllerConfig;
  apply(table: RouteTable): void;
  statusWriter?: StatusWriter;
  /** `namespace/name` of the controller's own Service */
  publishService?: string;
  nodeName?: string;
  logger: Logger;
  /** coalesce bursts of events (ms) */
  syncDelayMs?: number;
}

export class IngressController {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private lastProblems = new Set<string>();
  private statusBusy = false;

  constructor(private readonly o: ControllerOptions) {}

  async start(): Promise<void> {
    const all = Object.values(this.o.sources) as Array<Source<KubeObject>>;
    for (const s of all) {
      for (const ev of ["add", "update", "delete"] as const) s.on(ev, () => this.schedule());
      // The informer retries by itself; an unheard 'error' event would end the process.
      s.on("error", (err: Error) => this.o.logger.warn({ err: err.message }, "watch failed; retrying"));
    }
    await Promise.all(all.map((s) => s.start()));
    this.sync();
  }

  get synced(): boolean {
    return (Object.values(this.o.sources) as Array<Source<KubeObject>>).every((s) => s.hasSynced);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const s of Object.values(this.o.sources) as Array<Source<KubeObject>>) s.stop();
  }

  private schedule(): void {
    if (this.stopped || this.timer || !this.synced) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.sync();
    }, this.o.syncDelayMs ?? 50);
  }

  /** Rebuild, swap, publish status. */
  sync(): void {
    if (this.stopped) return;
    const s = this.o.sources;
    const table = buildRoutes(
      s.ingresses.list(),
      s.ingressClasses.list(),
      s.services.list(),
      s.endpointSlices.list(),
      s.secrets.list(),
      this.o.config,
    );
    this.o.apply(table);
    const problems = new Set(table.problems.map((p) => `${p.ingress ?? ""}: ${p.message}`));
    for (const p of table.problems)
      if (!this.lastProblems.has(`${p.ingress ?? ""}: ${p.message}`))
        this.o.logger.warn({ ingress: p.ingress }, p.message);
    this.lastProblems = problems;
    this.o.logger.info(
      { servers: table.servers.size, ingresses: table.ingresses.length },
      "configuration applied",
    );
    void this.writeStatus(table);
  }

  private async writeStatus(table: RouteTable): Promise<void> {
    const writer = this.o.statusWriter;
    if (!writer || this.statusBusy) return;
    this.statusBusy = true;
    try {
      const [ns, name] = (this.o.publishService ?? "").split("/");
      const svc = this.o.sources.services
        .list()
        .find((x) => x.metadata.namespace === ns && x.metadata.name === name);
      const addresses = statusAddresses(svc, this.o.sources.nodes.list(), this.o.nodeName);
      const served = new Set(table.ingresses.map((r) => `${r.namespace}/${r.name}`));
      for (const ing of this.o.sources.ingresses.list()) {
        if (!served.has(`${ing.metadata.namespace}/${ing.metadata.name}`)) continue;
        const updated = withStatus(ing, addresses);
        if (!updated) continue;
        try {
          await writer.updateStatus(updated);
          this.o.logger.info(
            {
              ingress: `${ing.metadata.namespace}/${ing.metadata.name}`,
              addresses: addresses.map((a) => a.ip ?? a.hostname),
            },
            "updated Ingress status",
          );
        } catch (err) {
          // A conflict means a newer object is on its way: the next sync writes from it.
          this.o.logger.warn(
            { ingress: `${ing.metadata.namespace}/${ing.metadata.name}`, err: (err as Error).message },
            "could not update Ingress status",
          );
        }
      }
    } finally {
      this.statusBusy = false;
    }
  }
}
