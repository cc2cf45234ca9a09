// kube-scheduler's loop: unbound pods are queued, scheduled against the cached nodes and the
// pods already placed (plus those this scheduler just bound, which the cache may not show yet),
// and bound through the pods/binding subresource. Pods that fit nowhere get a FailedScheduling
// event and PodScheduled=False, and are retried with back-off and whenever a node changes.
import type { Node, Pod } from "@klab/api";
import { ApiError, resourcePath } from "@klab/client";
import type { ControllerContext, RunningController } from "../context.ts";
import { apiTime } from "../pods.ts";
import { Controller, keyOf, splitKey } from "../runtime.ts";
import { needsScheduling, schedule } from "./schedule.ts";

const COMPONENT = "default-scheduler";

export function schedulerController(ctx: ControllerContext): RunningController {
  const log = ctx.logger.child({ controller: "scheduler" });
  const pods = ctx.informers.get<Pod>("v1", "pods");
  const nodes = ctx.informers.get<Node>("v1", "nodes");
  /** pod key -> node, for pods bound but not yet seen bound in the cache */
  const assumed = new Map<string, { node: string; pod: Pod; at: number }>();
  const backoff = new Map<string, number>();
  let bindingSupported = true;

  const c = new Controller("scheduler", reconcile, log, ctx.metrics);

  function requeueUnscheduled(): void {
    for (const p of pods.list()) if (needsScheduling(p)) c.enqueue(keyOf(p));
  }

  pods.on("add", (p) => needsScheduling(p) && c.enqueue(keyOf(p)));
  pods.on("update", (p) => {
    if (p.spec?.nodeName) assumed.delete(keyOf(p));
    if (needsScheduling(p)) c.enqueue(keyOf(p));
  });
  pods.on("delete", (p) => {
    assumed.delete(keyOf(p));
    backoff.delete(keyOf(p));
    // A freed node may now fit a waiting pod (host ports).
    if (p.spec?.nodeName) requeueUnscheduled();
  });
  nodes.on("add", requeueUnscheduled);
  nodes.on("update", requeueUnscheduled);

  function podsByNode(): Map<string, Pod[]> {
    const out = new Map<string, Pod[]>();
    const add = (node: string, p: Pod) => {
      const l = out.get(node);
      if (l) l.push(p);
      else out.set(node, [p]);
    };
    for (const p of pods.list()) {
      const phase = p.status?.phase;
      if (p.spec?.nodeName && phase !== "Succeeded" && phase !== "Failed") add(p.spec.nodeName, p);
    }
    const now = Date.now();
    for (const [key, a] of assumed) {
      if (now - a.at > 30_000) assumed.delete(key);
      else if (!pods.get(...splitKey(key))?.spec?.nodeName) add(a.node, a.pod);
    }
    return out;
  }

  async function bind(pod: Pod, node: string): Promise<void> {
    const ns = pod.metadata.namespace!;
    const name = pod.metadata.name!;
    if (bindingSupported) {
      try {
        await ctx.client.request("POST", resourcePath("v1", "pods", ns, name, "binding"), {
          body: {
            apiVersion: "v1",
            kind: "Binding",
            metadata: { name, namespace: ns, uid: pod.metadata.uid },
            target: { apiVersion: "v1", kind: "Node", name: node },
          },
        });
        return;
      } catch (err) {
        // A server without the binding subresource answers 404 with no object details, or 405.
        const noSubresource =
          err instanceof ApiError &&
          (err.code === 405 ||
            (err.code === 404 && !(err.status.details as { name?: string } | undefined)?.name));
        if (!noSubresource) throw err;
        bindingSupported = false;
        log.warn("the API server has no pods/binding subresource; binding by updating spec.nodeName");
      }
    }
    await ctx.client.patch("v1", "pods", ns, name, { spec: { nodeName: node } }, "merge");
  }

  /** PodScheduled, merged by type so the kubelet's own conditions are left as they are. */
  async function setScheduledCondition(pod: Pod, status: "True" | "False", message?: string): Promise<void> {
    const prior = pod.status?.conditions?.find((x) => x.type === "PodScheduled");
    if (prior && prior.status === status && prior.message === message) return;
    const cond: Record<string, unknown> = {
      type: "PodScheduled",
      status,
      lastProbeTime: null,
      lastTransitionTime: prior?.status === status ? prior.lastTransitionTime : apiTime(),
      reason: status === "False" ? "Unschedulable" : null,
      message: status === "False" ? message : null,
    };
    const patch: Record<string, unknown> = { conditions: [cond] };
    if (!pod.status?.phase) patch.phase = "Pending";
    await ctx.client.patch(
      "v1",
      "pods",
      pod.metadata.namespace,
      pod.metadata.name!,
      { status: patch },
      "strategic",
      "status",
    );
  }

  async function reconcile(key: string): Promise<void> {
    const pod = pods.get(...splitKey(key));
    if (!pod || !needsScheduling(pod) || assumed.has(key)) return;
    const candidates = nodes.list().filter((n) => !n.metadata.deletionTimestamp);
    const result = schedule(pod, candidates, podsByNode());
    if ("node" in result) {
      await bind(pod, result.node);
      assumed.set(key, { node: result.node, pod, at: Date.now() });
      // kube-apiserver's binding also sets PodScheduled=True; this server's binding does not, and
      // the kubelet keeps whatever PodScheduled it finds, so a pod that was Unschedulable is set
      // right here (a pod that never failed gets True from its kubelet: one write saved per pod).
      if (
        !bindingSupported ||
        pod.status?.conditions?.some((x) => x.type === "PodScheduled" && x.status !== "True")
      ) {
        void setScheduledCondition(pod, "True").catch((err: Error) =>
          log.debug({ pod: key, err: err.message }, "could not set PodScheduled"),
        );
      }
      backoff.delete(key);
      log.info({ pod: key, node: result.node }, "bound pod");
      ctx.events.emit(
        COMPONENT,
        pod,
        "Normal",
        "Scheduled",
        `Successfully assigned ${key} to ${result.node}`,
      );
      return;
    }
    log.info({ pod: key, reason: result.reasons }, "pod is unschedulable");
    ctx.events.emit(COMPONENT, pod, "Warning", "FailedScheduling", result.reasons);
    await setScheduledCondition(pod, "False", result.reasons);
    // kube-scheduler's pod back-off: 1 s doubling to 10 s; node changes requeue sooner.
    const delay = Math.min(10_000, backoff.get(key) ?? 1_000);
    backoff.set(key, delay * 2);
    c.enqueueAfter(key, delay);
  }

  return {
    name: "scheduler",
    start: () => {
      c.start();
      requeueUnscheduled();
    },
    stop: () => c.stop(),
  };
}
