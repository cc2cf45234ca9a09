// The Deployment controller's arithmetic as functions of data (pkg/controller/deployment/util):
// surge and unavailability fenceposts, which ReplicaSet is "new", how far to scale it up and the
// old ones down during a rolling update, revisions, status and the Available/Progressing
// conditions with kube's reasons and messages.
import type {
  Condition,
  Deployment,
  DeploymentStatus,
  IntOrString,
  PodTemplateSpec,
  ReplicaSet,
} from "@klab/api";
import { canonicalJSON } from "../names.ts";

export const REVISION = "deployment.kubernetes.io/revision";
export const DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas";
export const MAX_REPLICAS = "deployment.kubernetes.io/max-replicas";
export const POD_TEMPLATE_HASH = "pod-template-hash";
/** Deployment annotations that are not copied onto its ReplicaSets (annotationsToSkip). */
const SKIP_ANNOTATIONS = new Set([
  "kubectl.kubernetes.io/last-applied-configuration",
  REVISION,
  "deployment.kubernetes.io/revision-history",
  DESIRED_REPLICAS,
  MAX_REPLICAS,
  "deprecated.deployment.rollback.to",
]);

export function replicasOf(d: Deployment): number {
  return d.spec?.replicas ?? 1;
}

/** intstr.GetScaledValueFromIntOrPercent */
export function scaledValue(
  v: IntOrString | undefined,
  total: number,
  roundUp: boolean,
  dflt: string,
): number {
  const x = v ?? dflt;
  if (typeof x === "number") return x;
  const m = /^(\d+)%$/.exec(x);
  if (!m) {
    const n = Number(x);
    if (Number.isInteger(n)) return n;
    throw new Error(
      `invalid value for IntOrString: invalid value "${x}": must be an integer or a percentage`,
    );
  }
  const raw = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(raw) : Math.floor(raw);
}

/** ResolveFenceposts: maxSurge rounds up, maxUnavailable down, and both zero means one unavailable. */
export function resolveFenceposts(d: Deployment): { maxSurge: number; maxUnavailable: number } {
  const ru = d.spec?.strategy?.rollingUpdate;
  const desired = replicasOf(d);
  const maxSurge = scaledValue(ru?.maxSurge, desired, true, "25%");
  let maxUnavailable = scaledValue(ru?.maxUnavailable, desired, false, "25%");
  if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;
  return { maxSurge, maxUnavailable };
}

export function isRecreate(d: Deployment): boolean {
  return d.spec?.strategy?.type === "Recreate";
}

/** MaxUnavailable(deployment) */
export function maxUnavailable(d: Deployment): number {
  if (isRecreate(d) || replicasOf(d) === 0) return 0;
  return Math.min(resolveFenceposts(d).maxUnavailable, replicasOf(d));
}

export function maxSurge(d: Deployment): number {
  return isRecreate(d) ? 0 : resolveFenceposts(d).maxSurge;
}

function withoutHash(t: PodTemplateSpec | undefined): unknown {
  const c = structuredClone(t ?? {});
  if (c.metadata?.labels) {
    delete c.metadata.labels[POD_TEMPLATE_HASH];
    if (Object.keys(c.metadata.labels).length === 0) delete c.metadata.labels;
  }
  if (c.metadata && Object.keys(c.metadata).length === 0) delete c.metadata;
  return c;
}

/** EqualIgnoreHash */
export function templatesEqualIgnoringHash(
  a: PodTemplateSpec | undefined,
  b: PodTemplateSpec | undefined,
): boolean {
  return canonicalJSON(withoutHash(a)) === canonicalJSON(withoutHash(b));
}

function created(o: { metadata: { creationTimestamp?: string | null; name?: string } }): string {
  return `${o.metadata.creationTimestamp ?? ""}\0${o.metadata.name ?? ""}`;
}

export function byCreation<T extends { metadata: { creationTimestamp?: string | null; name?: string } }>(
  xs: T[],
): T[] {
  return [...xs].sort((a, b) => (created(a) < created(b) ? -1 : created(a) > created(b) ? 1 : 0));
}

/** FindNewReplicaSet: the oldest ReplicaSet whose template equals the Deployment's. */
export function findNewReplicaSet(d: Deployment, rss: ReplicaSet[]): ReplicaSet | undefined {
  return byCreation(rss).find((rs) => templatesEqualIgnoringHash(rs.spec?.template, d.spec?.template));
}

export function revisionOf(o: { metadata: { annotations?: Record<string, string> } }): number {
  const n = Number(o.metadata.annotations?.[REVISION] ?? 0);
  return Number.isFinite(n) ? n : 0;
}

export function maxRevision(rss: ReplicaSet[]): number {
  return rss.reduce((m, rs) => Math.max(m, revisionOf(rs)), 0);
}

export function specReplicas(rss: ReplicaSet[]): number {
  return rss.reduce((n, rs) => n + (rs.spec?.replicas ?? 0), 0);
}

function sumStatus(rss: ReplicaSet[], f: "replicas" | "readyReplicas" | "availableReplicas"): number {
  return rss.reduce((n, rs) => n + (rs.status?.[f] ?? 0), 0);
}

/** NewRSNewReplicas: how many replicas the new ReplicaSet may have now. */
export function newRSNewReplicas(d: Deployment, all: ReplicaSet[], newRS: ReplicaSet): number {
  const desired = replicasOf(d);
  if (isRecreate(d)) return desired;
  const current = specReplicas(all);
  const maxTotal = desired + maxSurge(d);
  const have = newRS.spec?.replicas ?? 0;
  if (current >= maxTotal) return have;
  return have + Math.max(0, Math.min(maxTotal - current, desired - have));
}

export interface ScaleAction {
  rs: ReplicaSet;
  from: number;
  to: number;
}

/**
 * reconcileOldReplicaSets: first scale down old ReplicaSets' unhealthy replicas, then as many
 * healthy ones as the availability budget allows, oldest ReplicaSet first.
 */
export function scaleDownOld(
  d: Deployment,
  all: ReplicaSet[],
  old: ReplicaSet[],
  newRS: ReplicaSet | undefined,
): ScaleAction[] {
  const oldCount = specReplicas(old);
  if (oldCount === 0) return [];
  const allCount = specReplicas(all);
  const minAvailable = replicasOf(d) - maxUnavailable(d);
  const newUnavailable = (newRS?.spec?.replicas ?? 0) - (newRS?.status?.availableReplicas ?? 0);
  const maxScaledDown = allCount - minAvailable - newUnavailable;
  if (maxScaledDown <= 0) return [];

  const target = new Map<ReplicaSet, number>(old.map((rs) => [rs, rs.spec?.replicas ?? 0]));
  // cleanupUnhealthyReplicas
  let cleaned = 0;
  for (const rs of byCreation(old)) {
    if (cleaned >= maxScaledDown) break;
    const spec = target.get(rs)!;
    const available = rs.status?.availableReplicas ?? 0;
    if (spec === 0 || spec === available) continue;
    const n = Math.min(maxScaledDown - cleaned, spec - available);
    target.set(rs, spec - n);
    cleaned += n;
  }
  // scaleDownOldReplicaSetsForRollingUpdate
  const availableNow = sumStatus(all, "availableReplicas");
  if (availableNow > minAvailable) {
    const budget = Math.min(availableNow - minAvailable, maxScaledDown - cleaned);
    let done = 0;
    for (const rs of byCreation(old)) {
      if (done >= budget) break;
      const spec = target.get(rs)!;
      if (spec === 0) continue;
      const n = Math.min(spec, budget - done);
      target.set(rs, spec - n);
      done += n;
    }
  }
  return old
    .filter((rs) => target.get(rs) !== (rs.spec?.replicas ?? 0))
    .map((rs) => ({ rs, from: rs.spec?.replicas ?? 0, to: target.get(rs)! }));
}

/** Labels, selector and annotations of the ReplicaSet a Deployment's template becomes. */
export function newReplicaSet(d: Deployment, hash: string, replicas: number, revision: number): ReplicaSet {
  const template = structuredClone(d.spec!.template);
  template.metadata = { ...(template.metadata ?? {}) };
  template.metadata.labels = { ...(template.metadata.labels ?? {}), [POD_TEMPLATE_HASH]: hash };
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(d.metadata.annotations ?? {}))
    if (!SKIP_ANNOTATIONS.has(k)) annotations[k] = v;
  annotations[DESIRED_REPLICAS] = String(replicasOf(d));
  annotations[MAX_REPLICAS] = String(replicasOf(d) + maxSurge(d));
  annotations[REVISION] = String(revision);
  const selector = structuredClone(d.spec!.selector);
  selector.matchLabels = { ...(selector.matchLabels ?? {}), [POD_TEMPLATE_HASH]: hash };
  return {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: {
      name: `${d.metadata.name}-${hash}`,
      namespace: d.metadata.namespace,
      labels: { ...(template.metadata.labels ?? {}) },
      annotations,
      ownerReferences: [
        {
          apiVersion: "apps/v1",
          kind: "Deployment",
          name: d.metadata.name!,
          uid: d.metadata.uid!,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      replicas,
      minReadySeconds: d.spec?.minReadySeconds ?? 0,
      selector,
      template,
    },
  };
}

function setCondition(conds: Condition[], c: Condition, now: string): Condition[] {
  const cur = conds.find((x) => x.type === c.type);
  if (cur && cur.status === c.status && cur.reason === c.reason) return conds;
  const next: Condition = { ...c, lastUpdateTime: now, lastTransitionTime: now };
  if (cur && cur.status === c.status) next.lastTransitionTime = cur.lastTransitionTime;
  return [...conds.filter((x) => x.type !== c.type), next];
}

export function condition(d: { status?: DeploymentStatus }, type: string): Condition | undefined {
  return d.status?.conditions?.find((c) => c.type === type);
}

/** DeploymentComplete */
export function isComplete(d: Deployment, s: DeploymentStatus): boolean {
  const r = replicasOf(d);
  return (
    s.updatedReplicas === r &&
    s.replicas === r &&
    s.availableReplicas === r &&
    (s.observedGeneration ?? 0) >= (d.metadata.generation ?? 1)
  );
}

/** DeploymentProgressing: some counter moved the right way since the last status. */
export function isProgressing(d: Deployment, s: DeploymentStatus): boolean {
  const o = d.status ?? {};
  const oldStatusOld = (o.replicas ?? 0) - (o.updatedReplicas ?? 0);
  const newStatusOld = (s.replicas ?? 0) - (s.updatedReplicas ?? 0);
  return (
    (s.updatedReplicas ?? 0) > (o.updatedReplicas ?? 0) ||
    newStatusOld < oldStatusOld ||
    (s.readyReplicas ?? 0) > (o.readyReplicas ?? 0) ||
    (s.availableReplicas ?? 0) > (o.availableReplicas ?? 0)
  );
}

/** calculateStatus + syncRolloutStatus: the status a Deployment should carry now. */
export function deploymentStatus(
  d: Deployment,
  all: ReplicaSet[],
  newRS: ReplicaSet | undefined,
  now: Date,
  extra: { created?: boolean } = {},
): DeploymentStatus {
  const ts = now.toISOString().replace(/\.\d+Z$/, "Z");
  const available = sumStatus(all, "availableReplicas");
  const s: DeploymentStatus = {
    observedGeneration: d.metadata.generation ?? 1,
    replicas: sumStatus(all, "replicas"),
    updatedReplicas: newRS?.status?.replicas ?? 0,
    readyReplicas: sumStatus(all, "readyReplicas"),
    availableReplicas: available,
    unavailableReplicas: Math.max(replicasOf(d) - available, 0),
  };
  if (d.status?.collisionCount) s.collisionCount = d.status.collisionCount;
  let conds = [...(d.status?.conditions ?? [])];
  conds =
    available >= replicasOf(d) - maxUnavailable(d)
      ? setCondition(
          conds,
          {
            type: "Available",
            status: "True",
            reason: "MinimumReplicasAvailable",
            message: "Deployment has minimum availability.",
          },
          ts,
        )
      : setCondition(
          conds,
          {
            type: "Available",
            status: "False",
            reason: "MinimumReplicasUnavailable",
            message: "Deployment does not have minimum availability.",
          },
          ts,
        );

  // A new ReplicaSet that cannot create its pods says so on the Deployment too.
  const failed = newRS?.status?.conditions?.find((c) => c.type === "ReplicaFailure" && c.status === "True");
  conds = failed
    ? setCondition(
        conds,
        { type: "ReplicaFailure", status: "True", reason: failed.reason, message: failed.message },
        ts,
      )
    : conds.filter((c) => c.type !== "ReplicaFailure");

  const deadline = d.spec?.progressDeadlineSeconds ?? 600;
  const hasDeadline = deadline !== 2147483647;
  const progressing = conds.find((c) => c.type === "Progressing");
  const rsName = newRS?.metadata.name ?? "";
  if (d.spec?.paused) {
    conds = setCondition(
      conds,
      { type: "Progressing", status: "Unknown", reason: "DeploymentPaused", message: "Deployment is paused" },
      ts,
    );
  } else if (progressing?.reason === "DeploymentPaused") {
    conds = setCondition(
      conds,
      {
        type: "Progressing",
        status: "Unknown",
        reason: "DeploymentResumed",
        message: "Deployment is resumed",
      },
      ts,
    );
  } else if (!hasDeadline) {
    conds = conds.filter((c) => c.type !== "Progressing");
  } else if (extra.created && newRS) {
    conds = setCondition(
      conds,
      {
        type: "Progressing",
        status: "True",
        reason: "NewReplicaSetCreated",
        message: `Created new replica set "${rsName}"`,
      },
      ts,
    );
  } else {
    const complete = s.replicas === s.updatedReplicas && progressing?.reason === "NewReplicaSetAvailable";
    if (!complete) {
      if (isComplete(d, s)) {
        conds = setCondition(
          conds,
          {
            type: "Progressing",
            status: "True",
            reason: "NewReplicaSetAvailable",
            message: `ReplicaSet "${rsName}" has successfully progressed.`,
          },
          ts,
        );
      } else if (isProgressing(d, s) || !progressing) {
        const c: Condition = {
          type: "Progressing",
          status: "True",
          reason: progressing ? "ReplicaSetUpdated" : "FoundNewReplicaSet",
          message: progressing
            ? newRS
              ? `ReplicaSet "${rsName}" is progressing.`
              : "Deployment is progressing."
            : `Found new replica set "${rsName}"`,
          lastUpdateTime: ts,
          lastTransitionTime: progressing?.status === "True" ? progressing.lastTransitionTime : ts,
        };
        conds = [...conds.filter((x) => x.type !== "Progressing"), c];
      } else if (
        progressing.lastUpdateTime &&
        Date.parse(progressing.lastUpdateTime) + deadline * 1000 < now.getTime()
      ) {
        conds = setCondition(
          conds,
          {
            type: "Progressing",
            status: "False",
            reason: "ProgressDeadlineExceeded",
            message: `ReplicaSet "${rsName}" has timed out progressing.`,
          },
          ts,
        );
      }
    }
  }
  // kube keeps Available before Progressing as the conditions were first added.
  s.conditions = conds.sort((a, b) => order(a.type) - order(b.type));
  return s;
}

function order(t: string): number {
  return t === "Available" ? 0 : t === "Progressing" ? 1 : 2;
}

/** Old ReplicaSets beyond revisionHistoryLimit that are fully scaled down, oldest revision first. */
export function replicaSetsToCleanUp(d: Deployment, old: ReplicaSet[]): ReplicaSet[] {
  const limit = d.spec?.revisionHistoryLimit ?? 10;
  const idle = old.filter(
    (rs) =>
      !rs.metadata.deletionTimestamp && (rs.spec?.replicas ?? 0) === 0 && (rs.status?.replicas ?? 0) === 0,
  );
  if (idle.length <= limit) return [];
  return [...idle].sort((a, b) => revisionOf(a) - revisionOf(b)).slice(0, idle.length - limit);
}
