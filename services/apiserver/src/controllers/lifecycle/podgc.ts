// The pod garbage collector's orphan pass (pkg/controller/podgc gcOrphaned): a pod bound to a
// node that no longer exists has no kubelet to ever finish it, so after a quarantine it is
// deleted at once (grace period 0). Node absence is confirmed with a live GET.
import type { Node, Pod } from "@klab/api";
import type { ControllerContext, RunningController } from "../context.ts";
import { isNotFound, keyOf } from "../runtime.ts";

const COMPONENT = "pod-garbage-collector";
const CHECK_PERIOD_MS = 20_000;
const QUARANTINE_MS = 40_000;

export function podGcController(ctx: ControllerContext): RunningController {
  const log = ctx.logger.child({ controller: COMPONENT });
  const pods = ctx.informers.get<Pod>("v1", "pods");
  const nodes = ctx.informers.get<Node>("v1", "nodes");
  /** node name -> when it was first seen missing */
  const missingSince = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  async function pass(): Promise<void> {
    const now = Date.now();
    const bound = new Map<string, Pod[]>();
    for (const p of pods.list()) {
      const n = p.spec?.nodeName;
      if (!n || nodes.get(undefined, n)) continue;
      const l = bound.get(n);
      if (l) l.push(p);
      else bound.set(n, [p]);
    }
    for (const n of missingSince.keys()) if (!bound.has(n)) missingSince.delete(n);
    for (const [node, orphans] of bound) {
      const since = missingSince.get(node) ?? now;
      missingSince.set(node, since);
      if (now - since < QUARANTINE_MS) continue;
      if (await ctx.client.get("v1", "nodes", undefined, node)) continue;
      for (const p of orphans) {
        log.info({ pod: keyOf(p), node }, "deleting pod bound to a node that no longer exists");
        await ctx.client
          .delete("v1", "pods", p.metadata.namespace, p.metadata.name!, { gracePeriodSeconds: 0 })
          .catch((err) =>
            isNotFound(err)
              ? undefined
              : log.warn({ pod: keyOf(p), err: (err as Error).message }, "could not delete orphaned pod"),
          );
      }
      missingSince.delete(node);
    }
  }

  return {
    name: COMPONENT,
    start: () => {
      timer = setInterval(() => {
        if (running) return;
        running = pass()
          .catch((err: Error) => log.warn({ err: err.message }, "pod GC pass failed"))
          .finally(() => (running = undefined));
      }, CHECK_PERIOD_MS);
      timer.unref?.();
    },
    stop: async () => {
      if (timer) clearInterval(timer);
      await running;
    },
  };
}
