/**
 * The pod network's settings a cluster admin may change: ConfigMap kube-system/klab-cni, as real
 * CNIs keep theirs (Calico's `veth_mtu`, Cilium's `mtu`). Like theirs, a change applies to pods
 * created afterwards; running pods keep the eth0 they got.
 */
import type { Logger } from "pino";
import type { ConfigMap } from "@klab/api";
import { Informer, type KubeClient } from "@klab/client";

export const CNI_NAMESPACE = "kube-system";
export const CNI_CONFIGMAP = "klab-cni";

/** IPv4's minimum MTU (RFC 791) up to what a TUN device takes. */
const MIN_MTU = 68;
const MAX_MTU = 65535;

/** The pod MTU the ConfigMap's data asks for, or the node's default with the reason it was not used. */
export function podMtuFrom(
  data: Record<string, string> | undefined,
  fallback: number,
): { mtu: number; error?: string } {
  const raw = data?.mtu?.trim();
  if (raw === undefined || raw === "") return { mtu: fallback };
  const n = Number(raw);
  if (!Number.isInteger(n) || n < MIN_MTU || n > MAX_MTU)
    return {
      mtu: fallback,
      error: `${CNI_CONFIGMAP}: mtu ${JSON.stringify(raw)} is not an integer from ${MIN_MTU} to ${MAX_MTU}`,
    };
  return { mtu: n };
}

export class CniConfig {
  private readonly informer: Informer<ConfigMap>;
  private current: number;
  private lastError = "";

  constructor(
    client: KubeClient,
    private readonly fallbackMtu: number,
    private readonly log?: Logger,
  ) {
    this.current = fallbackMtu;
    this.informer = new Informer<ConfigMap>(client, "v1", "configmaps", {
      namespace: CNI_NAMESPACE,
      fieldSelector: `metadata.name=${CNI_CONFIGMAP}`,
    });
    for (const ev of ["add", "update", "delete", "sync"] as const) this.informer.on(ev, () => this.sync());
    this.informer.on("error", (err) => this.log?.warn({ err }, `${CNI_CONFIGMAP} watch failed; retrying`));
  }

  async start(): Promise<void> {
    await this.informer.start();
  }

  stop(): void {
    this.informer.stop();
  }

  /** The MTU a pod created now gets on its eth0. */
  podMtu(): number {
    return this.current;
  }

  private sync(): void {
    const { mtu, error } = podMtuFrom(
      this.informer.get(CNI_NAMESPACE, CNI_CONFIGMAP)?.data,
      this.fallbackMtu,
    );
    if (error && error !== this.lastError) this.log?.warn(error);
    this.lastError = error ?? "";
    if (mtu !== this.current) this.log?.info({ mtu }, "pod MTU for new pods changed");
    this.current = mtu;
  }
}
