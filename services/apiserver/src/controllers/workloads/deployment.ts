// The Deployment controller: owns ReplicaSets named <deployment>-<pod-template-hash>, rolls from
// old to new with RollingUpdate (maxSurge/maxUnavailable) or Recreate, keeps revision
// annotations and revisionHistoryLimit, and writes the status `kubectl rollout status` reads.
import type { Deployment, Pod, ReplicaSet } from "@klab/api";
import { ApiError } from "@klab/client";
import type { ControllerContext, RunningController } from "../context.ts";
import { selectorMatches } from "../labels.ts";
import { computeHash } from "../names.ts";
import { NamespaceIndex } from "../nsindex.ts";
import { isControlledBy, ownerReference } from "../pods.ts";
import { Controller, controllerRef, isNotFound, keyOf, splitKey } from "../runtime.ts";
import { sameStatus, statusPatch } from "./replicaset.ts";
import {
  DESIRED_REPLICAS,
  MAX_REPLICAS,
  REVISION,
  deploymentStatus,
  findNewReplicaSet,
  isComplete,
  isRecreate,
  maxRevision,
  maxSurge,
  newRSNewReplicas,
  newReplicaSet,
  replicaSetsToCleanUp,
  replicasOf,
  revisionOf,
  scaleDownOld,
  templatesEqualIgnoringHash,
} from "./deployment-logic.ts";

const COMPONENT = "deployment-controller";

export function deploymentController(ctx: ControllerContext): RunningController {
  const log = ctx.logger.child({ controller: COMPONENT });
  const deployments = ctx.informers.get<Deployment>("apps/v1", "deployments");
  const replicaSets = ctx.informers.get<ReplicaSet>("apps/v1", "replicasets");
  const pods = ctx.informers.get<Pod>("v1", "pods");
  const podsByNs = new NamespaceIndex(pods);
  const c = new Controller(COMPONENT, reconcile, log, ctx.metrics, 2);

  function enqueueOwner(rs: ReplicaSet): void {
    const ref = controllerRef(rs);
    if (ref?.kind === "Deployment") c.enqueue(`${rs.metadata.namespace}/${ref.name}`);
    else if (!ref) {
      for (const d of deployments.list()) {
        if (
          d.metadata.namespace === rs.metadata.namespace &&
          selectorMatches(d.spec?.selector, rs.metadata.labels)
        ) {
          c.enqueue(keyOf(d));
        }
      }
    }
  }

  deployments.on("add", (d) => c.enqueue(keyOf(d)));
  deployments.on("update", (d) => c.enqueue(keyOf(d)));
  replicaSets.on("add", enqueueOwner);
  replicaSets.on("update", enqueueOwner);
  replicaSets.on("delete", enqueueOwner);
  // Recreate waits for the old pods to be gone.
  pods.on("delete", (p) => {
    const ref = controllerRef(p);
    if (ref?.kind !== "ReplicaSet") return;
    const rs = replicaSets.get(p.metadata.namespace, ref.name);
    if (rs) enqueueOwner(rs);
  });

  async function scale(d: Deployment, rs: ReplicaSet, to: number): Promise<ReplicaSet> {
    const from = rs.spec?.replicas ?? 0;
    const annotations: Record<string, string> = {
      [DESIRED_REPLICAS]: String(replicasOf(d)),
      [MAX_REPLICAS]: String(replicasOf(d) + maxSurge(d)),
    };
    const updated = await ctx.client.patch<ReplicaSet>(
      "apps/v1",
      "replicasets",
      rs.metadata.namespace,
      rs.metadata.name!,
      { metadata: { annotations }, spec: { replicas: to } },
      "merge",
    );
    if (from !== to) {
      const verb = to > from ? "up" : "down";
      ctx.events.emit(
        COMPONENT,
        d,
        "Normal",
        "ScalingReplicaSet",
        `Scaled ${verb} replica set ${rs.metadata.name} from ${from} to ${to}`,
      );
    }
    return updated;
  }

  /** getNewReplicaSet: find it (bumping its revision if an old template came back) or create it. */
  async function ensureNewReplicaSet(
    d: Deployment,
    all: ReplicaSet[],
    old: ReplicaSet[],
    create: boolean,
  ): Promise<{ rs?: ReplicaSet; created: boolean }> {
    const existing = findNewReplicaSet(d, all);
    const revision = maxRevision(old) + 1;
    if (existing) {
      if (revisionOf(existing) < revision) {
        const updated = await ctx.client.patch<ReplicaSet>(
          "apps/v1",
          "replicasets",
          existing.metadata.namespace,
          existing.metadata.name!,
          { metadata: { annotations: { [REVISION]: String(revision) } } },
          "merge",
        );
        return { rs: updated, created: false };
      }
      return { rs: existing, created: false };
    }
    if (!create) return { created: false };
    const collisionCount = d.status?.collisionCount;
    const hash = computeHash(d.spec!.template, collisionCount);
    const draft = newReplicaSet(d, hash, 0, revision);
    draft.spec!.replicas = newRSNewReplicas(d, all, draft);
    try {
      const rs = await ctx.client.create(draft);
      if ((draft.spec!.replicas ?? 0) > 0) {
        ctx.events.emit(
          COMPONENT,
          d,
          "Normal",
          "ScalingReplicaSet",
          `Scaled up replica set ${rs.metadata.name} from 0 to ${draft.spec!.replicas}`,
        );
      }
      return { rs, created: true };
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 409 && err.reason === "AlreadyExists")) throw err;
      const clash = await ctx.client.get<ReplicaSet>(
        "apps/v1",
        "replicasets",
        draft.metadata.namespace,
        draft.metadata.name!,
      );
      if (
        clash &&
        isControlledBy(clash, d) &&
        templatesEqualIgnoringHash(clash.spec?.template, d.spec?.template)
      ) {
        return { rs: clash, created: false };
      }
      // A ReplicaSet of that name holds another template: hash again with a higher collision count.
      await ctx.client.patch(
        "apps/v1",
        "deployments",
        d.metadata.namespace,
        d.metadata.name!,
        { status: { collisionCount: (collisionCount ?? 0) + 1 } },
        "merge",
        "status",
      );
      throw err;
    }
  }

  async function claimReplicaSets(d: Deployment): Promise<ReplicaSet[]> {
    const out: ReplicaSet[] = [];
    for (const rs of replicaSets.list()) {
      if (rs.metadata.namespace !== d.metadata.namespace) continue;
      if (isControlledBy(rs, d)) out.push(rs);
      else if (
        !controllerRef(rs) &&
        !d.metadata.deletionTimestamp &&
        selectorMatches(d.spec?.selector, rs.metadata.labels)
      ) {
        const adopted = await ctx.client.patch<ReplicaSet>(
          "apps/v1",
          "replicasets",
          rs.metadata.namespace,
          rs.metadata.name!,
          { metadata: { ownerReferences: [...(rs.metadata.ownerReferences ?? []), ownerReference(d)] } },
          "merge",
        );
        out.push(adopted);
      }
    }
    return out;
  }

  function oldPodsRunning(namespace: string | undefined, old: ReplicaSet[]): boolean {
    const uids = new Set(old.map((rs) => rs.metadata.uid));
    return podsByNs.list(namespace).some((p) => {
      const ref = controllerRef(p);
      if (!ref || !uids.has(ref.uid)) return false;
      const phase = p.status?.phase;
      return phase !== "Succeeded" && phase !== "Failed";
    });
  }

  async function reconcile(key: string): Promise<void> {
    const [ns, name] = splitKey(key);
    const d = deployments.get(ns, name);
    if (!d || !d.spec || d.metadata.deletionTimestamp) return;
    let all = await claimReplicaSets(d);
    let newRS = findNewReplicaSet(d, all);
    let old = all.filter((rs) => rs !== newRS);
    let created = false;
    const replace = (rs: ReplicaSet) => {
      all = all.map((x) => (x.metadata.uid === rs.metadata.uid ? rs : x));
      old = old.map((x) => (x.metadata.uid === rs.metadata.uid ? rs : x));
      if (newRS?.metadata.uid === rs.metadata.uid) newRS = rs;
    };

    if (d.spec.paused) {
      // A paused Deployment only scales what exists.
      if (
        newRS &&
        old.every((rs) => (rs.spec?.replicas ?? 0) === 0) &&
        newRS.spec?.replicas !== replicasOf(d)
      ) {
        replace(await scale(d, newRS, replicasOf(d)));
      }
    } else if (isRecreate(d)) {
      const active = old.filter((rs) => (rs.spec?.replicas ?? 0) > 0);
      for (const rs of active) replace(await scale(d, rs, 0));
      if (!active.length && !oldPodsRunning(ns, old)) {
        const r = await ensureNewReplicaSet(d, all, old, true);
        created = r.created;
        if (r.rs) {
          if (!all.some((x) => x.metadata.uid === r.rs!.metadata.uid)) all.push(r.rs);
          newRS = r.rs;
          replace(r.rs);
          if ((newRS.spec?.replicas ?? 0) !== replicasOf(d)) replace(await scale(d, newRS, replicasOf(d)));
        }
      }
    } else {
      const r = await ensureNewReplicaSet(d, all, old, true);
      created = r.created;
      if (r.rs) {
        if (!all.some((x) => x.metadata.uid === r.rs!.metadata.uid)) all.push(r.rs);
        newRS = r.rs;
        replace(r.rs);
      }
      // reconcileNewReplicaSet
      if (newRS && !created) {
        const have = newRS.spec?.replicas ?? 0;
        const want = have > replicasOf(d) ? replicasOf(d) : newRSNewReplicas(d, all, newRS);
        if (want !== have) replace(await scale(d, newRS, want));
      }
      // reconcileOldReplicaSets
      for (const a of scaleDownOld(d, all, old, newRS)) replace(await scale(d, a.rs, a.to));
    }

    if (newRS && d.metadata.annotations?.[REVISION] !== newRS.metadata.annotations?.[REVISION]) {
      await ctx.client.patch(
        "apps/v1",
        "deployments",
        ns,
        name,
        { metadata: { annotations: { [REVISION]: newRS.metadata.annotations?.[REVISION] ?? "1" } } },
        "merge",
      );
    }

    const status = deploymentStatus(d, all, newRS, new Date(), { created });
    if (isComplete(d, status)) {
      for (const rs of replicaSetsToCleanUp(d, old)) {
        await ctx.client
          .delete("apps/v1", "replicasets", rs.metadata.namespace, rs.metadata.name!)
          .catch((err) => (isNotFound(err) ? undefined : Promise.reject(err)));
      }
    }
    if (!sameStatus(d.status, status)) {
      await ctx.client.patch(
        "apps/v1",
        "deployments",
        ns,
        name,
        { status: statusPatch(status, [], d.status) },
        "merge",
        "status",
      );
    }
    // The progress deadline passes without any event: look again when it would.
    if (!d.spec.paused && !isComplete(d, status)) {
      c.enqueueAfter(key, Math.min((d.spec.progressDeadlineSeconds ?? 600) * 1000, 30_000));
    }
  }

  return {
    name: COMPONENT,
    start: () => {
      c.start();
      for (const d of deployments.list()) c.enqueue(keyOf(d));
    },
    stop: () => c.stop(),
  };
}
