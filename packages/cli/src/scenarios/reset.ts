/**
 * The generic reset: puts back what `klab up` installed in the cluster, whatever an exercise
 * changed. The add-on installer only creates what is missing (a second `klab up` must not undo a
 * user's edits); a reset must also replace what was edited, so each system object is compared
 * with the installer's own manifest and replaced only where it differs.
 */
import type { ConfigMap, KubeObject, Node, Pod, Service } from "@klab/api";
import type { KubeClient } from "@klab/client";
import { defaultSettings, ensureObjects, type ClusterSettings } from "../addons/index.ts";
import { exampleObjects } from "../addons/example.ts";
import { systemObjects } from "../addons/system.ts";

export { systemObjects };

const plurals: Record<string, string> = {
  ConfigMap: "configmaps",
  DaemonSet: "daemonsets",
  Deployment: "deployments",
  IngressClass: "ingressclasses",
  Namespace: "namespaces",
  Service: "services",
  ServiceAccount: "serviceaccounts",
};

export function pluralOf(kind: string): string {
  return plurals[kind] ?? `${kind.toLowerCase()}s`;
}

/**
 * True when every field the manifest sets has the same value in the live object (the server
 * adds defaults, which are not differences). Lists must match element by element.
 */
export function containsDesired(desired: unknown, live: unknown): boolean {
  if (Array.isArray(desired)) {
    return (
      Array.isArray(live) &&
      live.length === desired.length &&
      desired.every((d, i) => containsDesired(d, live[i]))
    );
  }
  if (desired !== null && typeof desired === "object") {
    if (live === null || typeof live !== "object" || Array.isArray(live)) return false;
    const l = live as Record<string, unknown>;
    return Object.entries(desired as Record<string, unknown>).every(([k, v]) => containsDesired(v, l[k]));
  }
  return desired === live || (typeof desired === "number" && String(desired) === live);
}

/** The object to PUT: the manifest, keeping what the server allocated (a Service's IPs and node ports). */
export function replacementFor(desired: KubeObject, live: KubeObject): KubeObject {
  const out = structuredClone(desired) as KubeObject & { spec?: Record<string, unknown> };
  out.metadata = { ...out.metadata, resourceVersion: live.metadata.resourceVersion };
  if (desired.kind === "Service") {
    const l = (live as Service).spec ?? {};
    const spec = (out.spec ??= {});
    for (const k of [
      "clusterIP",
      "clusterIPs",
      "healthCheckNodePort",
      "ipFamilies",
      "ipFamilyPolicy",
    ] as const)
      if (spec[k] === undefined && l[k] !== undefined) spec[k] = l[k];
    const ports = spec.ports as { name?: string; port: number; nodePort?: number }[] | undefined;
    for (const p of ports ?? []) {
      const old = l.ports?.find((x) => x.name === p.name && x.port === p.port);
      if (p.nodePort === undefined && old?.nodePort !== undefined) p.nodePort = old.nodePort;
    }
  }
  return out;
}

/** Creates what is missing and replaces what differs from its manifest; returns what it touched. */
export async function reapplyObjects(client: KubeClient, objects: KubeObject[]): Promise<string[]> {
  const touched: string[] = [];
  for (const o of objects) {
    const ref = `${o.kind.toLowerCase()}/${o.metadata.name}`;
    const live = await client.get<KubeObject>(
      o.apiVersion,
      pluralOf(o.kind),
      o.metadata.namespace,
      o.metadata.name!,
    );
    if (!live) {
      await ensureObjects(client, [o]);
      touched.push(`${ref} created`);
    } else if (!containsDesired(o, live)) {
      await client.update(replacementFor(o, live));
      touched.push(`${ref} restored`);
    }
  }
  return touched;
}

/** The settings the lab was installed with, read back from the lab where `klab up` left them. */
export async function labSettings(
  client: KubeClient,
  proxyMode: ClusterSettings["proxyMode"] | undefined,
): Promise<ClusterSettings> {
  const cm = await client.get<ConfigMap>("v1", "configmaps", "kube-system", "kube-proxy");
  const server = /server: (\S+)/.exec(cm?.data?.["kubeconfig.conf"] ?? "")?.[1];
  const mode = /^mode: "?(iptables|ipvs|userspace)"?/m.exec(cm?.data?.["config.conf"] ?? "")?.[1];
  const scheduler = /^ {2}scheduler: "?([a-z]*)"?/m.exec(cm?.data?.["config.conf"] ?? "")?.[1];
  const dns = await client.get<Service>("v1", "services", "kube-system", "kube-dns");
  return {
    ...defaultSettings,
    apiServerURL: server ?? defaultSettings.apiServerURL,
    proxyMode: proxyMode ?? (mode as ClusterSettings["proxyMode"] | undefined) ?? defaultSettings.proxyMode,
    ...(scheduler ? { ipvsScheduler: scheduler } : {}),
    clusterDNS: dns?.spec?.clusterIP ?? defaultSettings.clusterDNS,
  };
}

/** The system pods' selectors, with how many Ready pods a healthy lab has (-1: one per Ready node). */
export const SYSTEM_PODS = [
  { namespace: "kube-system", selector: "k8s-app=kube-proxy", want: -1, name: "kube-proxy" },
  { namespace: "kube-system", selector: "k8s-app=kube-dns", want: 2, name: "coredns" },
  {
    namespace: "ingress-nginx",
    selector: "app.kubernetes.io/component=controller",
    want: 1,
    name: "ingress-nginx",
  },
] as const;

/** Pods in CrashLoopBackOff wait minutes for their next start; once fixed, they start over at once. */
export function crashLooping(p: Pod): boolean {
  return (p.status?.containerStatuses ?? []).some(
    (c) => c.state?.waiting?.reason === "CrashLoopBackOff" || c.state?.terminated !== undefined,
  );
}

export async function restartCrashLoopingSystemPods(client: KubeClient): Promise<string[]> {
  const gone: string[] = [];
  for (const sp of SYSTEM_PODS) {
    const pods = await client.list<Pod>("v1", "pods", {
      namespace: sp.namespace,
      labelSelector: sp.selector,
    });
    for (const p of pods.items)
      if (!p.metadata.deletionTimestamp && crashLooping(p)) {
        await client.delete("v1", "pods", sp.namespace, p.metadata.name!);
        gone.push(`pod/${p.metadata.name}`);
      }
  }
  return gone;
}

export async function uncordonNodes(client: KubeClient): Promise<string[]> {
  const nodes = await client.list<Node>("v1", "nodes");
  const done: string[] = [];
  for (const n of nodes.items)
    if (n.spec?.unschedulable) {
      await client.patch("v1", "nodes", undefined, n.metadata.name!, { spec: { unschedulable: null } });
      done.push(`node/${n.metadata.name} uncordoned`);
    }
  return done;
}

/** Restores the guide's example application's objects if one was deleted (they are created, never replaced). */
export async function ensureExample(client: KubeClient): Promise<string[]> {
  return ensureObjects(client, await exampleObjects());
}
