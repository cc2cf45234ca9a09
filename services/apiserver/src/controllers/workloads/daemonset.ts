// The DaemonSet controller: one pod per eligible node, pinned there with a node-affinity term
// on metadata.name (the default scheduler binds it), tolerating the node-condition taints as kube
// adds them, rolling pods of an older template out maxUnavailable at a time.
import type { DaemonSet, DaemonSetStatus, Node, Pod, PodTemplateSpec, Toleration } from "@klab/api";
import type { ControllerContext, RunningController } from "../context.ts";
import { Expectations } from "../expectations.ts";
import { computeHash } from "../names.ts";
import { NamespaceIndex } from "../nsindex.ts";
import { isControlledBy, isPodActive, isPodAvailable, isPodReady, podFromTemplate } from "../pods.ts";
import { Controller, controllerRef, keyOf, splitKey } from "../runtime.ts";
import { nodeMatchesPod, untoleratedTaint } from "../scheduler/schedule.ts";
import { sameStatus, statusPatch } from "./replicaset.ts";
import { scaledValue } from "./deployment-logic.ts";

const COMPONENT = "daemonset-controller";
/** DaemonSetStatus fields without omitempty: a zero is written, not dropped. */
const REQUIRED_STATUS = [
  "currentNumberScheduled",
  "numberMisscheduled",
  "desiredNumberScheduled",
  "numberReady",
];
export const CONTROLLER_REVISION_HASH = "controller-revision-hash";

/** util.AddOrUpdateDaemonPodTolerations */
export function daemonPodTolerations(spec: {
  tolerations?: Toleration[];
  hostNetwork?: boolean;
}): Toleration[] {
  const out = [...(spec.tolerations ?? [])];
  const add = (t: Toleration) => {
    if (!out.some((x) => x.key === t.key && x.effect === t.effect && x.operator === t.operator)) out.push(t);
  };
  add({ key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute" });
  add({ key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute" });
  add({ key: "node.kubernetes.io/disk-pressure", operator: "Exists", effect: "NoSchedule" });
  add({ key: "node.kubernetes.io/memory-pressure", operator: "Exists", effect: "NoSchedule" });
  add({ key: "node.kubernetes.io/pid-pressure", operator: "Exists", effect: "NoSchedule" });
  add({ key: "node.kubernetes.io/unschedulable", operator: "Exists", effect: "NoSchedule" });
  if (spec.hostNetwork)
    add({ key: "node.kubernetes.io/network-unavailable", operator: "Exists", effect: "NoSchedule" });
  return out;
}

export function templateHash(ds: DaemonSet): string {
  return computeHash(ds.spec?.template, ds.status?.collisionCount);
}

/** The pod the DaemonSet runs on `node`. */
export function daemonPod(ds: DaemonSet, node: string): Pod {
  const template: PodTemplateSpec = structuredClone(ds.spec!.template);
  const pod = podFromTemplate(template, ds, {
    [CONTROLLER_REVISION_HASH]: templateHash(ds),
    "pod-template-generation": String(ds.metadata.generation ?? 1),
  });
  const spec = pod.spec!;
  spec.tolerations = daemonPodTolerations(spec);
  // util.ReplaceDaemonSetPodNodeNameNodeAffinity
  spec.affinity = {
    ...(spec.affinity ?? {}),
    nodeAffinity: {
      ...(spec.affinity?.nodeAffinity ?? {}),
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchFields: [{ key: "metadata.name", operator: "In", values: [node] }] }],
      },
    },
  };
  return pod;
}

/**
 * NodeShouldRunDaemonPod: a new pod may go where the labels fit and every NoSchedule/NoExecute
 * taint is tolerated (shouldRun); a pod already there may stay while its NoExecute taints are
 * tolerated (shouldContinueRunning), so a node going unreachable keeps its daemons.
 */
export function nodeShouldRunDaemonPod(
  ds: DaemonSet,
  node: Node,
): { shouldRun: boolean; shouldContinueRunning: boolean } {
  if (node.metadata.deletionTimestamp) return { shouldRun: false, shouldContinueRunning: false };
  const spec = ds.spec?.template?.spec ?? { containers: [] };
  const probe: Pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {},
    spec: { ...spec, affinity: spec.affinity },
  };
  if (!nodeMatchesPod(probe, node)) return { shouldRun: false, shouldContinueRunning: false };
  const tolerations = daemonPodTolerations(spec);
  return {
    shouldRun: !untoleratedTaint(node.spec?.taints, tolerations),
    shouldContinueRunning: !untoleratedTaint(node.spec?.taints, tolerations, ["NoExecute"]),
  };
}

function podNode(p: Pod): string | undefined {
  if (p.spec?.nodeName) return p.spec.nodeName;
  const terms =
    p.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  for (const t of terms)
    for (const f of t.matchFields ?? []) if (f.key === "metadata.name") return f.values?.[0];
  return undefined;
}

export interface DaemonPlan {
  create: string[];
  delete: Pod[];
  status: DaemonSetStatus;
}

/** What to create and delete so each eligible node runs exactly one current pod, and the status. */
export function planDaemonSet(ds: DaemonSet, nodes: Node[], owned: Pod[], now: number): DaemonPlan {
  const hash = templateHash(ds);
  const minReady = ds.spec?.minReadySeconds ?? 0;
  const byNode = new Map<string, Pod[]>();
  for (const p of owned.filter(isPodActive)) {
    const n = podNode(p);
    if (!n) continue;
    const l = byNode.get(n);
    if (l) l.push(p);
    else byNode.set(n, [p]);
  }
  const create: string[] = [];
  const del: Pod[] = [];
  let desired = 0;
  let current = 0;
  let misscheduled = 0;
  let ready = 0;
  let available = 0;
  let updated = 0;
  const outdated: Pod[] = [];
  const nodeNames = new Set(nodes.map((n) => n.metadata.name!));
  for (const node of nodes) {
    const name = node.metadata.name!;
    const onNode = byNode.get(name) ?? [];
    const { shouldRun, shouldContinueRunning } = nodeShouldRunDaemonPod(ds, node);
    if (shouldRun) {
      desired++;
      if (onNode.length === 0) {
        create.push(name);
        continue;
      }
      current++;
      // Keep the oldest, delete duplicates.
      const [keep, ...extra] = [...onNode].sort((a, b) =>
        (a.metadata.creationTimestamp ?? "") < (b.metadata.creationTimestamp ?? "") ? -1 : 1,
      );
      del.push(...extra);
      if (isPodReady(keep!)) ready++;
      if (isPodAvailable(keep!, minReady, now)) available++;
      if (keep!.metadata.labels?.[CONTROLLER_REVISION_HASH] === hash) updated++;
      else outdated.push(keep!);
    } else if (onNode.length) {
      misscheduled++;
      if (!shouldContinueRunning) del.push(...onNode);
    }
  }
  for (const [n, ps] of byNode) if (!nodeNames.has(n)) del.push(...ps);

  if ((ds.spec?.updateStrategy?.type ?? "RollingUpdate") === "RollingUpdate" && outdated.length) {
    const maxUnavailable = Math.max(
      1,
      scaledValue(ds.spec?.updateStrategy?.rollingUpdate?.maxUnavailable, desired, true, "1"),
    );
    const unavailable = desired - available;
    // Unavailable outdated pods go first: they cost nothing.
    const sorted = [...outdated].sort(
      (a, b) => Number(isPodAvailable(a, minReady, now)) - Number(isPodAvailable(b, minReady, now)),
    );
    let budget = maxUnavailable - unavailable;
    for (const p of sorted) {
      if (!isPodAvailable(p, minReady, now)) del.push(p);
      else if (budget > 0) {
        del.push(p);
        budget--;
      }
    }
  }

  const status: DaemonSetStatus = {
    currentNumberScheduled: current,
    numberMisscheduled: misscheduled,
    desiredNumberScheduled: desired,
    numberReady: ready,
    observedGeneration: ds.metadata.generation ?? 1,
    updatedNumberScheduled: updated,
    numberAvailable: available,
    numberUnavailable: desired - available,
  };
  if (ds.status?.collisionCount) status.collisionCount = ds.status.collisionCount;
  return { create, delete: [...new Set(del)], status };
}

export function daemonSetController(ctx: ControllerContext): RunningController {
  const log = ctx.logger.child({ controller: COMPONENT });
  const daemonSets = ctx.informers.get<DaemonSet>("apps/v1", "daemonsets");
  const nodes = ctx.informers.get<Node>("v1", "nodes");
  const pods = ctx.informers.get<Pod>("v1", "pods");
  const podsByNs = new NamespaceIndex(pods);
  const expectations = new Expectations();
  const c = new Controller(COMPONENT, reconcile, log, ctx.metrics);

  const enqueueAll = () => daemonSets.list().forEach((ds) => c.enqueue(keyOf(ds)));
  const enqueueOwner = (p: Pod) => {
    const ref = controllerRef(p);
    if (ref?.kind === "DaemonSet") c.enqueue(`${p.metadata.namespace}/${ref.name}`);
  };
  daemonSets.on("add", (ds) => c.enqueue(keyOf(ds)));
  daemonSets.on("update", (ds) => c.enqueue(keyOf(ds)));
  daemonSets.on("delete", (ds) => expectations.forget(keyOf(ds)));
  nodes.on("add", enqueueAll);
  nodes.on("update", (n, old) => {
    if (
      JSON.stringify([n.metadata.labels, n.spec?.taints]) !==
      JSON.stringify([old.metadata.labels, old.spec?.taints])
    ) {
      enqueueAll();
    }
  });
  nodes.on("delete", enqueueAll);
  pods.on("add", enqueueOwner);
  pods.on("update", enqueueOwner);
  pods.on("delete", enqueueOwner);

  async function reconcile(key: string): Promise<void> {
    const [ns, name] = splitKey(key);
    const ds = daemonSets.get(ns, name);
    if (!ds || !ds.spec) return;
    const owned = podsByNs.list(ns).filter((p) => isControlledBy(p, ds));
    const plan = planDaemonSet(ds, nodes.list(), owned, Date.now());
    const present = (podKey: string) => {
      const p = pods.get(...splitKey(podKey));
      return !!p && !p.metadata.deletionTimestamp;
    };
    if (!ds.metadata.deletionTimestamp && expectations.satisfied(key, present)) {
      await Promise.all(
        plan.create.map(async (node) => {
          const pod = daemonPod(ds, node);
          const podKey = `${ns}/${pod.metadata.name}`;
          expectations.expectCreate(key, podKey);
          try {
            await ctx.client.create(pod);
            ctx.events.emit(COMPONENT, ds, "Normal", "SuccessfulCreate", `Created pod: ${pod.metadata.name}`);
          } catch (err) {
            expectations.created(key, podKey);
            const message = err instanceof Error ? err.message : String(err);
            ctx.events.emit(COMPONENT, ds, "Warning", "FailedCreate", `Error creating: ${message}`);
            throw err;
          }
        }),
      );
      await Promise.all(
        plan.delete.map(async (p) => {
          const podKey = keyOf(p);
          expectations.expectDelete(key, podKey);
          try {
            await ctx.client.delete("v1", "pods", ns, p.metadata.name!);
            ctx.events.emit(COMPONENT, ds, "Normal", "SuccessfulDelete", `Deleted pod: ${p.metadata.name}`);
          } catch (err) {
            expectations.deleted(key, podKey);
            throw err;
          }
        }),
      );
    }
    if (!sameStatus(ds.status, plan.status)) {
      await ctx.client.patch(
        "apps/v1",
        "daemonsets",
        ns,
        name,
        { status: statusPatch(plan.status, REQUIRED_STATUS, ds.status) },
        "merge",
        "status",
      );
    }
  }

  return {
    name: COMPONENT,
    start: () => {
      c.start();
      enqueueAll();
    },
    stop: () => c.stop(),
  };
}
