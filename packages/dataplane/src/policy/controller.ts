/**
 * The NetworkPolicy controller of a node: informers over NetworkPolicies, Pods and Namespaces
 * feed one debounced, level-triggered recompilation of the whole PolicyIndex, loaded into the
 * stage in one swap (as kube-proxy's syncProxyRules rebuilds everything from its caches). Any
 * change that can move a verdict (a policy, a pod's labels, IP or phase, a namespace's labels)
 * triggers it; connections already in conntrack keep the verdict they were created with.
 */
import type { Namespace, NetworkPolicy, Pod } from "@klab/api";
import { Informer, type KubeClient } from "@klab/client";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { Counter, Gauge, Histogram } from "prom-client";
import { compilePolicies, type PolicyIndex } from "./compile.ts";

/** What the controller loads compiled indexes into (NetworkPolicyStage does). */
export interface PolicyIndexSink {
  load(index: PolicyIndex): void;
}

export interface PolicyControllerOptions {
  client: KubeClient;
  stage: PolicyIndexSink;
  /** Coalesces bursts of events into one compilation. Default 50 ms (well under the 1 s promise). */
  debounceMs?: number;
  logger?: Logger;
  registry?: Registry;
}

/** Fields of a pod that policy compilation reads; other updates (status conditions…) are ignored. */
function podFingerprint(p: Pod): string {
  return JSON.stringify([
    p.metadata.labels ?? {},
    p.status?.podIP ?? "",
    p.status?.phase ?? "",
    p.spec?.hostNetwork ?? false,
    (p.spec?.containers ?? []).map((c) => c.ports ?? []),
  ]);
}

export class PolicyController {
  private readonly o: PolicyControllerOptions;
  private readonly policies: Informer<NetworkPolicy>;
  private readonly pods: Informer<Pod>;
  private readonly namespaces: Informer<Namespace>;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private stopped = false;
  private readonly metrics?: { syncs: Counter; duration: Histogram; errors: Gauge };
  /** Times a compiled index was loaded into the stage. */
  generation = 0;
  /** Policy errors of the last compilation ("ns/name: why"). */
  lastErrors: string[] = [];
  private loaded: string[] = [];

  constructor(o: PolicyControllerOptions) {
    this.o = o;
    this.policies = new Informer<NetworkPolicy>(o.client, "networking.k8s.io/v1", "networkpolicies");
    this.pods = new Informer<Pod>(o.client, "v1", "pods");
    this.namespaces = new Informer<Namespace>(o.client, "v1", "namespaces");
    if (o.registry) {
      this.metrics = {
        syncs: new Counter({
          name: "klab_netpol_syncs_total",
          help: "NetworkPolicy compilations loaded into the dataplane",
          registers: [o.registry],
        }),
        duration: new Histogram({
          name: "klab_netpol_sync_duration_seconds",
          help: "Time to compile every NetworkPolicy into per-pod allow-sets",
          buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
          registers: [o.registry],
        }),
        errors: new Gauge({
          name: "klab_netpol_policy_errors",
          help: "NetworkPolicies the last compilation could not fully use",
          registers: [o.registry],
        }),
      };
    }
    const changed = () => this.schedule();
    for (const inf of [this.policies, this.namespaces] as Informer[]) {
      inf.on("add", changed);
      inf.on("delete", changed);
      inf.on("update", (obj, old) => {
        if (
          JSON.stringify([obj.metadata.labels, (obj as NetworkPolicy).spec]) !==
          JSON.stringify([old.metadata.labels, (old as NetworkPolicy).spec])
        )
          changed();
      });
      inf.on("sync", changed);
      inf.on("error", (err) => this.o.logger?.warn({ err, resource: inf.plural }, "informer error"));
    }
    this.pods.on("add", changed);
    this.pods.on("delete", changed);
    this.pods.on("update", (p, old) => {
      if (podFingerprint(p) !== podFingerprint(old)) changed();
    });
    this.pods.on("sync", changed);
    this.pods.on("error", (err) => this.o.logger?.warn({ err, resource: "pods" }, "informer error"));
  }

  /** Starts the informers; resolves after the first index (from complete caches) is loaded. */
  async start(): Promise<void> {
    await Promise.all([this.policies.start(), this.pods.start(), this.namespaces.start()]);
    this.started = true;
    this.sync();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.policies.stop();
    this.pods.stop();
    this.namespaces.stop();
  }

  /** "namespace/name@resourceVersion" of every policy in the index loaded last, sorted. */
  loadedPolicies(): string[] {
    return this.loaded;
  }

  private schedule(): void {
    if (!this.started || this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.sync();
    }, this.o.debounceMs ?? 50);
  }

  /** Compiles from the caches and loads the result; never throws (a failure keeps the last index). */
  sync(): void {
    if (this.stopped) return;
    const start = performance.now();
    try {
      const policies = this.policies.list();
      const index = compilePolicies(policies, this.pods.list(), this.namespaces.list());
      this.o.stage.load(index);
      this.loaded = policies
        .map((p) => `${p.metadata.namespace}/${p.metadata.name}@${p.metadata.resourceVersion}`)
        .sort();
      this.generation++;
      if (index.errors.join("\n") !== this.lastErrors.join("\n"))
        for (const e of index.errors) this.o.logger?.warn({ error: e }, "NetworkPolicy partly ignored");
      this.lastErrors = index.errors;
      const seconds = (performance.now() - start) / 1000;
      this.metrics?.syncs.inc();
      this.metrics?.duration.observe(seconds);
      this.metrics?.errors.set(index.errors.length);
      this.o.logger?.debug(
        { generation: this.generation, policies: this.policies.list().length, seconds },
        "NetworkPolicies compiled",
      );
    } catch (err) {
      this.o.logger?.error({ err }, "NetworkPolicy compilation failed; keeping the previous index");
    }
  }
}
