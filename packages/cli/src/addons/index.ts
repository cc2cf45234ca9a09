/**
 * Installs the lab's system components (and the guide's example unless bare), kubeadm-style:
 * each object is created if absent and otherwise left as the user may have edited it, so a
 * second `klab up` changes nothing.
 */
import type { KubeObject } from "@klab/api";
import { ApiError, type KubeClient } from "@klab/client";
import { systemObjects, type ClusterSettings } from "./system.ts";
import { exampleObjects } from "./example.ts";

export { guideCorefile, type ClusterSettings } from "./system.ts";

export const defaultSettings: ClusterSettings = {
  apiServerURL: "https://172.29.0.2:6443",
  clusterCIDR: "10.244.0.0/16",
  clusterDNS: "10.96.0.10",
  clusterDomain: "cluster.local",
  proxyMode: "iptables",
};

export async function ensureObjects(client: KubeClient, objects: KubeObject[]): Promise<string[]> {
  const created: string[] = [];
  for (const o of objects) {
    try {
      await client.create(o);
      created.push(`${o.kind.toLowerCase()}/${o.metadata.name}`);
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 409)) {
        throw new Error(
          `cannot create ${o.kind} ${o.metadata.namespace ?? ""}/${o.metadata.name}: ${(err as Error).message}`,
        );
      }
    }
  }
  return created;
}

export async function installAddons(
  client: KubeClient,
  settings: ClusterSettings,
  options: { example: boolean },
): Promise<string[]> {
  const objects = systemObjects(settings);
  if (options.example) objects.push(...(await exampleObjects()));
  return ensureObjects(client, objects);
}
