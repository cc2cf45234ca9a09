import { join } from "node:path";
import type { Command } from "commander";
import {
  conntrackRequest,
  filterError,
  type ConntrackFilter,
  type ConntrackRequest,
} from "@klab/dataplane/conntrack-socket.ts";
import { labHome } from "../native/plan.ts";

// `klab conntrack --node NODE -L | -C | -F | -D [-p tcp] [-s IP] [-d IP] [--sport N] [--dport N]`:
// a node's live connection tracking table, printed as conntrack(8) of conntrack-tools prints it.

/** The version line conntrack-tools prints its summaries with. */
export const CONNTRACK_TOOLS = "conntrack v1.4.6 (conntrack-tools)";

export interface ConntrackOptions {
  node?: string;
  name: string;
  socket?: string;
  dump?: boolean;
  count?: boolean;
  flush?: boolean;
  delete?: boolean;
  proto?: string;
  src?: string;
  dst?: string;
  sport?: string;
  dport?: string;
}

/** $KLAB_HOME/<lab>/nodes/<node>/conntrack.sock, unless --socket says otherwise. */
export function conntrackSocketFor(o: { node?: string; name: string; socket?: string }): string {
  if (o.socket) return o.socket;
  if (!o.node)
    throw new Error("which node? pass --node NODE (e.g. --node node-1; `kubectl get nodes` lists them)");
  return join(labHome(), o.name, "nodes", o.node, "conntrack.sock");
}

/** The request the flags ask for, or an error in conntrack's words. */
export function conntrackRequestFor(o: ConntrackOptions): ConntrackRequest {
  const ops = [o.dump && "list", o.count && "count", o.flush && "flush", o.delete && "delete"].filter(
    Boolean,
  ) as string[];
  if (ops.length === 0) throw new Error("no command specified: use -L (list), -C (count), -F (flush) or -D");
  if (ops.length > 1) throw new Error("only one command at a time: -L, -C, -F or -D");
  const port = (v: string | undefined) => (v === undefined ? undefined : /^\d+$/.test(v) ? Number(v) : NaN);
  const filter: ConntrackFilter = {
    proto: o.proto?.toLowerCase(),
    src: o.src,
    dst: o.dst,
    sport: port(o.sport),
    dport: port(o.dport),
  };
  const err = filterError(filter);
  if (err) throw new Error(err);
  const any = Object.values(filter).some((v) => v !== undefined);
  if (o.count) {
    if (any) throw new Error("-C counts the whole table: it takes no filter (use -L with a filter)");
    return { op: "count" };
  }
  if (o.flush) {
    if (any) throw new Error("-F empties the whole table: use -D with a filter to delete some entries");
    return { op: "flush" };
  }
  if (o.delete && !any)
    throw new Error("-D needs a filter (-p, -s, -d, --sport, --dport); -F empties the table");
  return { op: o.dump ? "list" : "flush", ...filter };
}

export function register(program: Command): void {
  program
    .command("conntrack")
    .description("a node's live connection tracking table, as conntrack -L|-C|-F|-D prints it")
    .option("--node <node>", "the Node whose dataplane to read")
    .option("--name <name>", "the lab's name", "klab")
    .option("--socket <path>", "the node dataplane's conntrack socket (overrides --node/--name)")
    .option("-L, --dump", "list the connection tracking table")
    .option("-C, --count", "show the table's counter")
    .option("-F, --flush", "flush the whole table")
    .option("-D, --delete", "delete the entries that match the filter")
    .option("-p, --proto <proto>", "only this layer 4 protocol: tcp, udp or icmp")
    .option("-s, --src <ip>", "only this original source address")
    .option("-d, --dst <ip>", "only this original destination address")
    .option("--sport <port>", "only this original source port")
    .option("--dport <port>", "only this original destination port")
    .action(async (o: ConntrackOptions) => {
      const req = conntrackRequestFor(o);
      const res = await conntrackRequest(conntrackSocketFor(o), req);
      if (!res.ok) throw new Error(res.error);
      if (req.op === "count") process.stdout.write(`${res.count}\n`);
      else if (req.op === "list") {
        process.stdout.write((res.lines ?? []).map((l) => l + "\n").join(""));
        process.stderr.write(`${CONNTRACK_TOOLS}: ${res.count} flow entries have been shown.\n`);
      } else if (o.flush) {
        process.stderr.write(`${CONNTRACK_TOOLS}: connection tracking table has been emptied.\n`);
      } else process.stderr.write(`${CONNTRACK_TOOLS}: ${res.count} flow entries have been deleted.\n`);
    });
}
