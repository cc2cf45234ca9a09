// The namespace controller: a Namespace being deleted (phase Terminating) has everything in it
// deleted; while things remain, its status says so in kube's conditions; once it is empty the
// `kubernetes` finalizer is removed through the finalize subresource and the Namespace goes.
import { resourceTypes, type Condition, type KubeObject, type Namespace } from "@klab/api";
import { resourcePath } from "@klab/client";
import type { ControllerContext, RunningController } from "../context.ts";
import { apiTime } from "../pods.ts";
import { Controller, isNotFound } from "../runtime.ts";

const COMPONENT = "namespace-controller";
export const FINALIZER_KUBERNETES = "kubernetes";

/** The NamespaceContentRemaining condition kube's namespaced-resources deleter writes. */
export function contentConditions(
  remaining: Map<string, number>,
  finalizers: Map<string, number>,
  now: string,
): Condition[] {
  const parts = [...remaining.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([r, n]) => `${r} has ${n} resource instances`);
  const fins = [...finalizers.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([f, n]) => `${f} in ${n} resource instances`);
  return [
    {
      type: "NamespaceDeletionDiscoveryFailure",
      status: "False",
      lastTransitionTime: now,
      reason: "ResourcesDiscovered",
      message: "All resources successfully discovered",
    },
    {
      type: "NamespaceDeletionGroupVersionParsingFailure",
      status: "False",
      lastTransitionTime: now,
      reason: "ParsedGroupVersions",
      message: "All legacy kube types successfully parsed",
    },
    {
      type: "NamespaceDeletionContentFailure",
      status: "False",
      lastTransitionTime: now,
      reason: "ContentDeleted",
      message: "All content successfully deleted, may be waiting on finalization",
    },
    parts.length
      ? {
          type: "NamespaceContentRemaining",
          status: "True",
          lastTransitionTime: now,
          reason: "SomeResourcesRemain",
          message: `Some resources are remaining: ${parts.join(", ")}`,
        }
      : {
          type: "NamespaceContentRemaining",
          status: "False",
          lastTransitionTime: now,
          reason: "ContentRemoved",
          message: "All content successfully removed",
        },
    fins.length
      ? {
          type: "NamespaceFinalizersRemaining",
          status: "True",
          lastTransitionTime: now,
          reason: "SomeFinalizersRemain",
          message: `Some content in the namespace has finalizers remaining: ${fins.join(", ")}`,
        }
      : {
          type: "NamespaceFinalizersRemaining",
          status: "False",
          lastTransitionTime: now,
          reason: "ContentHasNoFinalizers",
          message: "All content-preserving finalizers finished",
        },
  ];
}

export function namespaceController(ctx: ControllerContext): RunningController {
  const log = ctx.logger.child({ controller: COMPONENT });
  const namespaces = ctx.informers.get<Namespace>("v1", "namespaces");
  const c = new Controller(COMPONENT, reconcile, log, ctx.metrics);
  const enqueue = (n: Namespace) => n.metadata.deletionTimestamp && c.enqueue(n.metadata.name!);
  namespaces.on("add", enqueue);
  namespaces.on("update", enqueue);

  async function reconcile(name: string): Promise<void> {
    const ns = namespaces.get(undefined, name);
    if (!ns?.metadata.deletionTimestamp) return;
    const remaining = new Map<string, number>();
    const finalizers = new Map<string, number>();
    for (const rt of resourceTypes) {
      if (!rt.namespaced || !rt.verbs.includes("delete")) continue;
      const list = await ctx.client.list<KubeObject>(rt.apiVersion, rt.plural, { namespace: name });
      if (list.items.length === 0) continue;
      const label = rt.group ? `${rt.plural}.${rt.group}` : rt.plural;
      remaining.set(label, list.items.length);
      for (const o of list.items) {
        for (const f of o.metadata.finalizers ?? []) finalizers.set(f, (finalizers.get(f) ?? 0) + 1);
        if (o.metadata.deletionTimestamp) continue;
        await ctx.client
          .delete(rt.apiVersion, rt.plural, name, o.metadata.name!, { propagationPolicy: "Background" })
          .catch((err) => (isNotFound(err) ? undefined : Promise.reject(err)));
      }
    }
    const now = apiTime();
    const conditions = contentConditions(remaining, finalizers, now);
    const prior = JSON.stringify((ns.status?.conditions ?? []).map((x) => [x.type, x.status, x.message]));
    if (prior !== JSON.stringify(conditions.map((x) => [x.type, x.status, x.message]))) {
      await ctx.client
        .patch(
          "v1",
          "namespaces",
          undefined,
          name,
          { status: { phase: "Terminating", conditions } },
          "merge",
          "status",
        )
        .catch((err) => (isNotFound(err) ? undefined : Promise.reject(err)));
    }
    if (remaining.size) {
      // Pods wait for their kubelet; check again soon rather than wait for an event.
      c.enqueueAfter(name, 1_000);
      return;
    }
    const spec = (ns.spec?.finalizers ?? []).filter((f) => f !== FINALIZER_KUBERNETES);
    try {
      await ctx.client.request("PUT", resourcePath("v1", "namespaces", undefined, name, "finalize"), {
        body: {
          apiVersion: "v1",
          kind: "Namespace",
          metadata: { name, resourceVersion: ns.metadata.resourceVersion },
          spec: { finalizers: spec },
        },
      });
      log.info({ namespace: name }, "namespace finalized");
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  return {
    name: COMPONENT,
    start: () => {
      c.start();
      for (const n of namespaces.list()) enqueue(n);
    },
    stop: () => c.stop(),
  };
}
