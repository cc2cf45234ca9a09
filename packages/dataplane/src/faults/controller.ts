/**
 * Keeps a component's faults in step with the ConfigMap kube-system/klab-faults, the faults'
 * only state: a node agent that restarts reads them back from the API and applies them again.
 */
import type { Logger } from "pino";
import type { ConfigMap } from "@klab/api";
import { Informer, type KubeClient } from "@klab/client";
import { faultsFromData, type Fault } from "./model.ts";

export const FAULTS_NAMESPACE = "kube-system";
export const FAULTS_CONFIGMAP = "klab-faults";

export class FaultController {
  private readonly informer: Informer<ConfigMap>;
  private last = "";

  /** `apply` gets the whole current list on every change ([] when the ConfigMap is gone). */
  constructor(
    client: KubeClient,
    private readonly apply: (faults: Fault[]) => void,
    private readonly log?: Logger,
  ) {
    this.informer = new Informer<ConfigMap>(client, "v1", "configmaps", {
      namespace: FAULTS_NAMESPACE,
      fieldSelector: `metadata.name=${FAULTS_CONFIGMAP}`,
    });
    const changed = () => this.sync();
    this.informer.on("add", changed);
    this.informer.on("update", changed);
    this.informer.on("delete", changed);
    this.informer.on("sync", changed);
    this.informer.on("error", (err) => this.log?.warn({ err }, "klab-faults watch failed; retrying"));
  }

  /** Resolves once the first list was applied. */
  async start(): Promise<void> {
    await this.informer.start();
  }

  stop(): void {
    this.informer.stop();
  }

  private sync(): void {
    const cm = this.informer.get(FAULTS_NAMESPACE, FAULTS_CONFIGMAP);
    const { faults, errors } = faultsFromData(cm?.data);
    const text = JSON.stringify(faults);
    if (text === this.last) return;
    this.last = text;
    for (const e of errors) this.log?.warn(e);
    this.log?.info({ faults: faults.map((f) => f.id) }, "faults applied");
    this.apply(faults);
  }
}
