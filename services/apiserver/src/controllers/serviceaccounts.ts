// kube-controller-manager's serviceaccount controller (a "default" ServiceAccount in every
// namespace) and root-ca-cert-publisher (ConfigMap kube-root-ca.crt with the cluster CA in every
// namespace), which the kube-api-access projected volume of every pod reads.
import type { ConfigMap, KubeObject, Namespace } from "@klab/api";
import type { ControllerContext, RunningController } from "./context.ts";

export const ROOT_CA_CONFIGMAP = "kube-root-ca.crt";

export function serviceAccountsController(ctx: ControllerContext, caPem: string): RunningController {
  const log = ctx.logger.child({ controller: "serviceaccount" });
  const namespaces = ctx.informers.get<Namespace>("v1", "namespaces");
  const serviceAccounts = ctx.informers.get<KubeObject>("v1", "serviceaccounts");
  const configMaps = ctx.informers.get<ConfigMap>("v1", "configmaps");
  let started = false;
  const pending = new Set<string>();

  const ensure = async (ns: string): Promise<void> => {
    const n = namespaces.get(undefined, ns);
    if (!n || n.metadata.deletionTimestamp || n.status?.phase === "Terminating") return;
    if (!serviceAccounts.get(ns, "default")) {
      await create({
        apiVersion: "v1",
        kind: "ServiceAccount",
        metadata: { name: "default", namespace: ns },
      });
    }
    const cm = configMaps.get(ns, ROOT_CA_CONFIGMAP);
    if (!cm) {
      await create({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: {
          name: ROOT_CA_CONFIGMAP,
          namespace: ns,
          annotations: {
            "kubernetes.io/description":
              "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.",
          },
        },
        data: { "ca.crt": caPem },
      } as KubeObject);
    } else if (cm.data?.["ca.crt"] !== caPem) {
      await ctx.client
        .update({ ...cm, data: { ...(cm.data ?? {}), "ca.crt": caPem } })
        .catch((err) => log.warn({ namespace: ns, err: String(err) }, "updating kube-root-ca.crt failed"));
    }
  };
  const create = async (obj: KubeObject) => {
    try {
      await ctx.client.create(obj);
    } catch (err) {
      if ((err as { code?: number }).code !== 409)
        log.warn({ namespace: obj.metadata.namespace, kind: obj.kind, err: String(err) }, "create failed");
    }
  };
  const kick = (ns: string | undefined) => {
    if (!ns || !started || pending.has(ns)) return;
    pending.add(ns);
    setTimeout(() => {
      pending.delete(ns);
      void ensure(ns);
    }, 100).unref();
  };
  namespaces.on("add", (n) => kick(n.metadata.name));
  namespaces.on("update", (n) => kick(n.metadata.name));
  serviceAccounts.on("delete", (s) => kick(s.metadata.namespace));
  configMaps.on("delete", (c) => kick(c.metadata.namespace));
  configMaps.on("update", (c) => c.metadata.name === ROOT_CA_CONFIGMAP && kick(c.metadata.namespace));

  return {
    name: "serviceaccount",
    start: () => {
      started = true;
      for (const n of namespaces.list()) kick(n.metadata.name);
    },
    stop: async () => {
      started = false;
    },
  };
}
