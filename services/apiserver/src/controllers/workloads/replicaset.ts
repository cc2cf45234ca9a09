// The ReplicaSet controller: keeps `spec.replicas` active pods carrying the template, adopting
// matching orphans and releasing pods that stopped matching, and reports status as kube's does.
import type { Condition, Pod, ReplicaSet, ReplicaSetStatus } from "@klab/api";
import type { ControllerContext, RunningController } from "../context.ts";
import { Expectations } from "../expectations.ts";
import { selectorMatches } from "../labels.ts";
import {
  apiTime,
  compareForDeletion,
  isControlledBy,
  isPodActive,
  isPodAvailable,
  isPodReady,
  ownerReference,
  podFromTemplate,
} from "../pods.ts";
import { canonicalJSON } from "../names.ts";
import { NamespaceIndex } from "../nsindex.ts";
import { Controller, controllerRef, isAlreadyExists, isNotFound, keyOf, splitKey } from "../runtime.ts";

const COMPONENT = "replicaset-controller";
/** kube's BurstReplicas: at most this many creates or deletes per sync. */
const BURST = 500;

/** The ReplicaSet status the pods imply (calculateStatus). */
export function replicaSetStatus(rs: ReplicaSet, owned: Pod[], now: number): ReplicaSetStatus {
  const active = owned.filter(isPodActive);
  const templateLabels = rs.spec?.template?.metadata?.labels ?? {};
  const minReady = rs.spec?.minReadySeconds ?? 0;
  const status: ReplicaSetStatus = {
    replicas: active.length,
    fullyLabeledReplicas: active.filter((p) =>
      Object.entries(templateLabels).every(([k, v]) => p.metadata.labels?.[k] === v),
    ).length,
    readyReplicas: active.filter(isPodReady).length,
    availableReplicas: active.filter((p) => isPodAvailable(p, minReady, now)).length,
    observedGeneration: rs.metadata.generation ?? 1,
  };
  const failure = rs.status?.conditions?.filter((c) => c.type === "ReplicaFailure");
  if (failure?.length) status.conditions = failure;
  return status;
}

/**
 * The ReplicaFailure condition kube's ReplicaSet controller keeps: set while creating or deleting
 * pods fails (a name clash is only bad luck and does not count), removed once it works again.
 */
export function withReplicaFailure(
  status: ReplicaSetStatus,
  failure: { reason: string; err: unknown } | undefined,
  prior: Condition[] | undefined,
): ReplicaSetStatus {
  const others = (status.conditions ?? []).filter((c) => c.type !== "ReplicaFailure");
  const existing = prior?.find((c) => c.type === "ReplicaFailure");
  if (failure && !isAlreadyExists(failure.err)) {
    const message = failure.err instanceof Error ? failure.err.message : String(failure.err);
    const cond: Condition =
      existing && existing.reason === failure.reason && existing.message === message
        ? existing
        : {
            type: "ReplicaFailure",
            status: "True",
            lastTransitionTime: apiTime(),
            reason: failure.reason,
            message,
          };
    return { ...status, conditions: [...others, cond] };
  }
  const out = { ...status };
  if (others.length) out.conditions = others;
  else delete out.conditions;
  return out;
}

/** The pods to delete first when scaling down (getPodsToDelete). */
export function podsToDelete(active: Pod[], count: number): Pod[] {
  return [...active].sort(compareForDeletion).slice(0, count);
}

/** omitempty: zero counts are stored as absent, as kube-apiserver returns them. */
export function statusPatch(
  status: object,
  required: string[] = ["replicas"],
  prior: object | undefined = undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  // A field the new status no longer has is removed, which a merge patch spells null.
  for (const k of Object.keys(prior ?? {})) if (!(k in status)) out[k] = null;
  for (const [k, v] of Object.entries(status)) out[k] = v === 0 && !required.includes(k) ? null : v;
  return out;
}

export function sameStatus(a: object | undefined, b: object): boolean {
  const norm = (s: object | undefined) =>
    canonicalJSON(
      Object.entries(s ?? {})
        .filter(([k, v]) => v !== undefined && v !== null && !(v === 0 && k !== "replicas"))
        .sort(([x], [y]) => (x < y ? -1 : 1)),
    );
  return norm(a) === norm(b);
}

export interface PodOwnerController extends RunningController {
  enqueue(key: string): void;
}

export function replicaSetController(ctx: ControllerContext): PodOwnerController {
  const log = ctx.logger.child({ controller: COMPONENT });
  const replicaSets = ctx.informers.get<ReplicaSet>("apps/v1", "replicasets");
  const pods = ctx.informers.get<Pod>("v1", "pods");
  const podsByNs = new NamespaceIndex(pods);
  const expectations = new Expectations();
  const c = new Controller(COMPONENT, reconcile, log, ctx.metrics, 2);

  function enqueueOwner(p: Pod): void {
    const ref = controllerRef(p);
    if (ref?.kind === "ReplicaSet") {
      c.enqueue(`${p.metadata.namespace}/${ref.name}`);
      return;
    }
    if (!ref) {
      // An orphan may be adopted by a matching ReplicaSet.
      for (const rs of replicaSets.list()) {
        if (
          rs.metadata.namespace === p.metadata.namespace &&
          selectorMatches(rs.spec?.selector, p.metadata.labels)
        ) {
          c.enqueue(keyOf(rs));
        }
      }
    }
  }

  replicaSets.on("add", (rs) => c.enqueue(keyOf(rs)));
  replicaSets.on("update", (rs) => c.enqueue(keyOf(rs)));
  replicaSets.on("delete", (rs) => expectations.forget(keyOf(rs)));
  pods.on("add", enqueueOwner);
  pods.on("update", (p, old) => {
    enqueueOwner(p);
    const oldRef = controllerRef(old);
    if (oldRef && oldRef.uid !== controllerRef(p)?.uid) c.enqueue(`${old.metadata.namespace}/${oldRef.name}`);
  });
  pods.on("delete", enqueueOwner);

  async function adopt(rs: ReplicaSet, p: Pod): Promise<void> {
    await ctx.client.patch(
      "v1",
      "pods",
      p.metadata.namespace,
      p.metadata.name!,
      {
        metadata: {
          ownerReferences: [...(p.metadata.ownerReferences ?? []), ownerReference(rs)],
        },
      },
      "merge",
    );
  }

  async function release(rs: ReplicaSet, p: Pod): Promise<void> {
    const refs = (p.metadata.ownerReferences ?? []).filter((r) => r.uid !== rs.metadata.uid);
    await ctx.client.patch(
      "v1",
      "pods",
      p.metadata.namespace,
      p.metadata.name!,
      { metadata: { ownerReferences: refs.length ? refs : null } },
      "merge",
    );
  }

  async function createPods(rs: ReplicaSet, key: string, count: number): Promise<void> {
    // Slow start: 1, 2, 4, ... so a template the server rejects fails once, not `count` times.
    let batch = 1;
    let remaining = count;
    while (remaining > 0) {
      const n = Math.min(batch, remaining);
      const results = await Promise.allSettled(
        Array.from({ length: n }, async () => {
          const pod = podFromTemplate(rs.spec?.template, rs);
          const podKey = `${pod.metadata.namespace}/${pod.metadata.name}`;
          expectations.expectCreate(key, podKey);
          try {
            await ctx.client.create(pod);
            ctx.events.emit(COMPONENT, rs, "Normal", "SuccessfulCreate", `Created pod: ${pod.metadata.name}`);
          } catch (err) {
            expectations.created(key, podKey);
            throw err;
          }
        }),
      );
      const failed = results.find((r) => r.status === "rejected") as PromiseRejectedResult | undefined;
      if (failed) {
        // A name collision is only bad luck with the random suffix: retry soon.
        if (!isAlreadyExists(failed.reason)) {
          const message = failed.reason instanceof Error ? failed.reason.message : String(failed.reason);
          ctx.events.emit(COMPONENT, rs, "Warning", "FailedCreate", `Error creating: ${message}`);
        }
        throw failed.reason;
      }
      remaining -= n;
      batch *= 2;
    }
  }

  async function reconcile(key: string): Promise<void> {
    const [ns, name] = splitKey(key);
    const rs = replicaSets.get(ns, name);
    if (!rs) {
      expectations.forget(key);
      return;
    }
    const nsPods = podsByNs.list(ns);
    const owned: Pod[] = [];
    for (const p of nsPods) {
      const matches = selectorMatches(rs.spec?.selector, p.metadata.labels);
      if (isControlledBy(p, rs)) {
        if (matches || rs.metadata.deletionTimestamp) owned.push(p);
        else await release(rs, p).catch((err) => (isNotFound(err) ? undefined : Promise.reject(err)));
      } else if (
        matches &&
        !controllerRef(p) &&
        !rs.metadata.deletionTimestamp &&
        !p.metadata.deletionTimestamp
      ) {
        await adopt(rs, p);
        owned.push(p);
      }
    }
    const active = owned.filter(isPodActive);
    const present = (podKey: string) => {
      const p = pods.get(...splitKey(podKey));
      return !!p && !p.metadata.deletionTimestamp;
    };
    let manageError: { reason: string; err: unknown } | undefined;
    if (!rs.metadata.deletionTimestamp && expectations.satisfied(key, present)) {
      const diff = active.length - (rs.spec?.replicas ?? 1);
      if (diff < 0) {
        await createPods(rs, key, Math.min(-diff, BURST)).catch((err: unknown) => {
          manageError = { reason: "FailedCreate", err };
        });
      } else if (diff > 0) {
        const victims = podsToDelete(active, Math.min(diff, BURST));
        await Promise.all(
          victims.map(async (p) => {
            const podKey = keyOf(p);
            expectations.expectDelete(key, podKey);
            try {
              await ctx.client.delete("v1", "pods", p.metadata.namespace, p.metadata.name!);
              ctx.events.emit(COMPONENT, rs, "Normal", "SuccessfulDelete", `Deleted pod: ${p.metadata.name}`);
            } catch (err) {
              expectations.deleted(key, podKey);
              throw err;
            }
          }),
        ).catch((err: unknown) => {
          manageError = { reason: "FailedDelete", err };
        });
      }
    }
    const now = Date.now();
    const status = withReplicaFailure(replicaSetStatus(rs, owned, now), manageError, rs.status?.conditions);
    if (!sameStatus(rs.status, status)) {
      await ctx.client.patch(
        "apps/v1",
        "replicasets",
        ns,
        name,
        { status: statusPatch(status, ["replicas"], rs.status) },
        "merge",
        "status",
      );
    }
    // Pods ready but not yet available become available after minReadySeconds: look again then.
    const minReady = rs.spec?.minReadySeconds ?? 0;
    if (minReady > 0 && status.readyReplicas !== status.availableReplicas)
      c.enqueueAfter(key, minReady * 1000);
    if (manageError) throw manageError.err;
  }

  return {
    name: COMPONENT,
    enqueue: (key) => c.enqueue(key),
    start: () => {
      c.start();
      for (const rs of replicaSets.list()) c.enqueue(keyOf(rs));
    },
    stop: () => c.stop(),
  };
}
