// The node IPAM controller: a Node without spec.podCIDR gets the next free subnet of the
// cluster CIDR (spec.podCIDR and spec.podCIDRs); a deleted Node's subnet is freed. The set of
// taken subnets is rebuilt from the cached Nodes before anything is handed out.
import type { Node } from "@klab/api";
import type { ControllerContext, RunningController } from "../context.ts";
import { Controller, keyOf } from "../runtime.ts";
import { CidrSet } from "./cidrs.ts";

const COMPONENT = "node-ipam-controller";

export function nodeIpamController(ctx: ControllerContext): RunningController {
  const log = ctx.logger.child({ controller: COMPONENT });
  const nodes = ctx.informers.get<Node>("v1", "nodes");
  const set = new CidrSet(ctx.settings.clusterCIDR, ctx.settings.nodeCIDRMaskSize);
  /** node name -> subnet handed out but not yet seen on the Node */
  const handedOut = new Map<string, string>();
  const c = new Controller(COMPONENT, reconcile, log, ctx.metrics);

  nodes.on("add", (n) => c.enqueue(keyOf(n)));
  nodes.on("update", (n) => c.enqueue(keyOf(n)));
  nodes.on("delete", (n) => {
    for (const cidr of n.spec?.podCIDRs ?? (n.spec?.podCIDR ? [n.spec.podCIDR] : [])) set.release(cidr);
    const h = handedOut.get(n.metadata.name!);
    if (h) set.release(h);
    handedOut.delete(n.metadata.name!);
  });

  async function reconcile(name: string): Promise<void> {
    const node = nodes.get(undefined, name);
    if (!node || node.metadata.deletionTimestamp) return;
    if (node.spec?.podCIDR || node.spec?.podCIDRs?.length) {
      handedOut.delete(name);
      return;
    }
    let cidr = handedOut.get(name);
    if (!cidr) {
      cidr = set.allocateNext();
      if (!cidr) {
        ctx.events.emit(
          COMPONENT,
          node,
          "Normal",
          "CIDRNotAvailable",
          `Node ${name} status is now: CIDRNotAvailable`,
        );
        throw new Error(`no pod CIDR left in ${set.cluster.text} for node ${name}`);
      }
      handedOut.set(name, cidr);
    }
    await ctx.client.patch(
      "v1",
      "nodes",
      undefined,
      name,
      { spec: { podCIDR: cidr, podCIDRs: [cidr] } },
      "merge",
    );
    log.info({ node: name, podCIDR: cidr }, "assigned pod CIDR");
  }

  return {
    name: COMPONENT,
    start: () => {
      for (const n of nodes.list()) {
        for (const cidr of n.spec?.podCIDRs ?? (n.spec?.podCIDR ? [n.spec.podCIDR] : [])) {
          if (!set.occupy(cidr))
            log.warn({ node: n.metadata.name, podCIDR: cidr }, "node pod CIDR is outside the cluster CIDR");
        }
      }
      c.start();
      for (const n of nodes.list()) c.enqueue(keyOf(n));
    },
    stop: () => c.stop(),
  };
}
