// The shared machinery of every controller: informers shared by kind, a work queue per
// controller, workers that call reconcile(key) and retry with back-off, and metrics named as
// client-go names them (workqueue_*).
import type { Logger } from "pino";
import { Counter, Gauge, type Registry } from "prom-client";
import type { KubeObject } from "@klab/api";
import { ApiError, Informer, type KubeClient } from "@klab/client";
import { WorkQueue } from "./queue.ts";

export class InformerFactory {
  private readonly informers = new Map<string, Informer<KubeObject>>();

  constructor(
    private readonly client: KubeClient,
    private readonly logger: Logger,
  ) {}

  get<T extends KubeObject>(apiVersion: string, plural: string): Informer<T> {
    const key = `${apiVersion}/${plural}`;
    let inf = this.informers.get(key);
    if (!inf) {
      inf = new Informer<KubeObject>(this.client, apiVersion, plural);
      inf.setMaxListeners(50);
      inf.on("error", (err) =>
        this.logger.warn({ err: err.message, resource: key }, "informer watch failed; relisting"),
      );
      this.informers.set(key, inf);
    }
    return inf as unknown as Informer<T>;
  }

  /** Starts every informer made so far and waits until each holds its first list. */
  async startAll(): Promise<void> {
    await Promise.all([...this.informers.values()].map((i) => i.start()));
  }

  stopAll(): void {
    for (const i of this.informers.values()) i.stop();
  }
}

export interface ControllerMetrics {
  adds: Counter<"name">;
  retries: Counter<"name">;
  depth: Gauge<"name">;
  reconciles: Counter<"name" | "result">;
}

export function controllerMetrics(registry: Registry): ControllerMetrics {
  const existing = (n: string) => registry.getSingleMetric(n);
  return {
    adds:
      (existing("workqueue_adds_total") as Counter<"name">) ??
      new Counter({
        name: "workqueue_adds_total",
        help: "Total number of adds handled by workqueue",
        labelNames: ["name"],
        registers: [registry],
      }),
    retries:
      (existing("workqueue_retries_total") as Counter<"name">) ??
      new Counter({
        name: "workqueue_retries_total",
        help: "Total number of retries handled by workqueue",
        labelNames: ["name"],
        registers: [registry],
      }),
    depth:
      (existing("workqueue_depth") as Gauge<"name">) ??
      new Gauge({
        name: "workqueue_depth",
        help: "Current depth of workqueue",
        labelNames: ["name"],
        registers: [registry],
      }),
    reconciles:
      (existing("klab_controller_reconcile_total") as Counter<"name" | "result">) ??
      new Counter({
        name: "klab_controller_reconcile_total",
        help: "Reconciles run by each in-process controller, by result",
        labelNames: ["name", "result"],
        registers: [registry],
      }),
  };
}

/** True for the errors a controller expects in normal operation and simply retries. */
export function isConflict(err: unknown): boolean {
  return err instanceof ApiError && (err.code === 409 || err.code === 404);
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiError && err.code === 404;
}

export function isAlreadyExists(err: unknown): boolean {
  return err instanceof ApiError && err.code === 409 && err.reason === "AlreadyExists";
}

export class Controller {
  readonly queue = new WorkQueue();
  private running: Promise<void>[] = [];
  private stopped = false;

  constructor(
    readonly name: string,
    private readonly reconcile: (key: string) => Promise<void>,
    private readonly logger: Logger,
    private readonly metrics: ControllerMetrics,
    private readonly workers = 1,
  ) {}

  enqueue(key: string): void {
    this.metrics.adds.inc({ name: this.name });
    this.queue.add(key);
    this.metrics.depth.set({ name: this.name }, this.queue.length);
  }

  enqueueAfter(key: string, ms: number): void {
    this.queue.addAfter(key, ms);
  }

  start(): void {
    for (let i = 0; i < this.workers; i++) this.running.push(this.work());
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined || this.stopped) return;
      this.metrics.depth.set({ name: this.name }, this.queue.length);
      try {
        await this.reconcile(key);
        this.queue.forget(key);
        this.metrics.reconciles.inc({ name: this.name, result: "success" });
      } catch (err) {
        this.metrics.reconciles.inc({ name: this.name, result: "error" });
        this.metrics.retries.inc({ name: this.name });
        const tries = this.queue.retries(key);
        const message = err instanceof Error ? err.message : String(err);
        if (isConflict(err))
          this.logger.debug({ controller: this.name, key, err: message }, "retrying after a conflict");
        else
          this.logger.warn(
            { controller: this.name, key, err: message, retries: tries },
            "reconcile failed; retrying",
          );
        if (!this.stopped) this.queue.addRateLimited(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.queue.shutdown();
    await Promise.allSettled(this.running);
  }
}

/** "ns/name" for namespaced objects, "name" otherwise: client-go's MetaNamespaceKeyFunc. */
export function keyOf(obj: KubeObject): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name!;
}

export function splitKey(key: string): [namespace: string | undefined, name: string] {
  const i = key.indexOf("/");
  return i < 0 ? [undefined, key] : [key.slice(0, i), key.slice(i + 1)];
}

/** The controller owner reference of an object, if any. */
export function controllerRef(obj: KubeObject) {
  return obj.metadata.ownerReferences?.find((r) => r.controller);
}
