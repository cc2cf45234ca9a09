import { join } from "node:path";
import type { Command } from "commander";
import { natRequest } from "@klab/dataplane/nat/loader.ts";
import { labHome } from "../native/plan.ts";

// `klab iptables-save --node NODE`: the node's live kube-proxy rules as iptables-save prints them.

/**
 * The node dataplane's loader socket: --socket, else $KLAB_NAT_SOCKET, else
 * $KLAB_HOME/<lab>/nodes/<node>/nat.sock (~/.klab/klab/nodes/node-1/nat.sock).
 */
export function natSocketFor(o: { node?: string; name: string; socket?: string }): string {
  if (o.socket) return o.socket;
  if (process.env.KLAB_NAT_SOCKET) return process.env.KLAB_NAT_SOCKET;
  if (!o.node)
    throw new Error("which node? pass --node NODE (e.g. --node node-1; `kubectl get nodes` lists them)");
  return join(labHome(), o.name, "nodes", o.node, "nat.sock");
}

export function register(program: Command): void {
  program
    .command("iptables-save")
    .description("print a node's live iptables rules (kube-proxy's chains) as iptables-save does")
    .option("--node <node>", "the Node whose dataplane to read")
    .option("--name <name>", "the lab's name", "klab")
    .option("--socket <path>", "the node dataplane's loader socket (overrides --node/--name)")
    .option("-t, --table <table>", "only this table: nat or filter")
    .option("-c, --counters", "print packet and byte counters of each rule")
    .action(
      async (o: { node?: string; name: string; socket?: string; table?: string; counters?: boolean }) => {
        if (o.table !== undefined && o.table !== "nat" && o.table !== "filter") {
          throw new Error(`table "${o.table}" does not exist on klab nodes: use -t nat or -t filter`);
        }
        const res = await natRequest(natSocketFor(o), {
          op: "iptables-save",
          table: o.table as "nat" | "filter" | undefined,
          counters: !!o.counters,
        });
        if (!res.ok) throw new Error(res.error);
        process.stdout.write(res.text ?? "");
      },
    );
}
