// The node lifecycle controller: every monitor period it compares each node's last heartbeat
// (Lease in kube-node-lease, or Ready's lastHeartbeatTime) with the grace period, sets the
// conditions to Unknown when the kubelet went silent, marks that node's pods not Ready, and
// keeps the not-ready / unreachable taints in step with the Ready condition.
import type { Lease, Node, Pod } from "@klab/api";
import type { ControllerContext, RunningController } from "../context.ts";
import { apiTime } from "../pods.ts";
import { Controller, keyOf } from "../runtime.ts";
import { NODE_LEASE_NAMESPACE, desiredReadinessTaints, sameTaints, staleConditions } from "./health.ts";

const COMPONENT = "node-controller";

export function nodeLifecycleController(ctx: ControllerContext): RunningController {
  const log = ctx.logger.child({ controller: COMPONENT });
  const nodes = ctx.informers.get<Node>("v1", "nodes");
  const leases = ctx.informers.get<Lease>("coordination.k8s.io/v1", "leases");
  const pods = ctx.informers.get<Pod>("v1", "pods");
  const c = new Controller(COMPONENT, reconcile, log, ctx.metrics);
  let timer: NodeJS.Timeout | undefined;

  nodes.on("add", (n) => c.enqueue(keyOf(n)));
  nodes.on("update", (n, old) => {
    const ready = (x: Node) => JSON.stringify(x.status?.conditions?.find((k) => k.type === "Ready") ?? null);
    if (
      ready(n) !== ready(old) ||
      !sameTaints(n.spec?.taints, old.spec?.taints) ||
      !!n.spec?.unschedulable !== !!old.spec?.unschedulable
    ) {
      c.enqueue(keyOf(n));
    }
  });
  leases.on("update", (l) => l.metadata.namespace === NODE_LEASE_NAMESPACE && c.enqueue(l.metadata.name!));

  async function markPodsNotReady(node: Node): Promise<void> {
    const name = node.metadata.name!;
    const now = apiTime();
    for (const p of pods.list()) {
      if (p.spec?.nodeName !== name || p.metadata.deletionTimestamp) continue;
      const conds = p.status?.conditions ?? [];
      const ready = conds.find((x) => x.type === "Ready");
      if (!ready || ready.status === "False") continue;
      try {
        await ctx.client.patch(
          "v1",
          "pods",
          p.metadata.namespace,
          p.metadata.name!,
          // Merged by type: the pod's other conditions stay as the kubelet wrote them.
          { status: { conditions: [{ type: "Ready", status: "False", lastTransitionTime: now }] } },
          "strategic",
          "status",
        );
        ctx.events.emit(COMPONENT, p, "Warning", "NodeNotReady", "Node is not ready");
      } catch (err) {
        log.warn({ pod: keyOf(p), err: (err as Error).message }, "could not mark pod not ready");
      }
    }
  }

  async function reconcile(name: string): Promise<void> {
    let node = nodes.get(undefined, name);
    if (!node || node.metadata.deletionTimestamp) return;
    const lease = leases.get(NODE_LEASE_NAMESPACE, name);
    const nowText = apiTime();
    const stale = staleConditions(
      node,
      lease,
      Date.now(),
      {
        gracePeriodMs: ctx.settings.nodeMonitorGracePeriodMs,
        startupGracePeriodMs: ctx.settings.nodeStartupGracePeriodMs,
      },
      nowText,
    );
    if (stale) {
      node = await ctx.client.patch<Node>(
        "v1",
        "nodes",
        undefined,
        name,
        // Only if the kubelet has not written in between.
        { metadata: { resourceVersion: node.metadata.resourceVersion }, status: { conditions: stale } },
        "merge",
        "status",
      );
      log.info({ node: name }, "node stopped posting status; conditions set to Unknown");
      ctx.events.emit(COMPONENT, node, "Normal", "NodeNotReady", `Node ${name} status is now: NodeNotReady`);
      await markPodsNotReady(node);
    }
    const taints = desiredReadinessTaints(node, nowText);
    if (!sameTaints(taints, node.spec?.taints)) {
      await ctx.client.patch(
        "v1",
        "nodes",
        undefined,
        name,
        { spec: { taints: taints.length ? taints : null } },
        "merge",
      );
      log.info({ node: name, taints: taints.map((t) => `${t.key}:${t.effect}`) }, "updated readiness taints");
    }
  }

  return {
    name: COMPONENT,
    start: () => {
      c.start();
      const monitor = () => {
        for (const n of nodes.list()) c.enqueue(keyOf(n));
      };
      monitor();
      timer = setInterval(monitor, ctx.settings.nodeMonitorPeriodMs);
      timer.unref?.();
    },
    stop: async () => {
      if (timer) clearInterval(timer);
      await c.stop();
    },
  };
}
