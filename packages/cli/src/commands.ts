import type { Command } from "commander";
import { register as relay } from "./commands/relay.ts";
import { register as lab } from "./commands/lab.ts";
import { register as role } from "./commands/role.ts";
import { register as edge } from "./commands/edge.ts";
import { register as apiserver } from "./commands/apiserver.ts";
import { register as nodeAgent } from "./commands/node-agent.ts";
import { register as ingress } from "./commands/ingress.ts";
import { register as coredns } from "./commands/coredns.ts";
import { register as iptablesSave } from "./commands/iptables-save.ts";
import { register as ipvsadm } from "./commands/ipvsadm.ts";
import { register as observe } from "./commands/observe.ts";
import { register as proxy } from "./commands/proxy.ts";
import { register as fault } from "./commands/fault.ts";
import { register as conntrack } from "./commands/conntrack.ts";
import { register as scenario } from "./commands/scenario.ts";

/**
 * Each subcommand lives in its own module under ./commands/ and exports `register(program)`.
 * This is the one place that wires them, so `klab --help` shows every command.
 */
export function registerCommands(program: Command): void {
  relay(program);
  lab(program);
  role(program);
  edge(program);
  apiserver(program);
  nodeAgent(program);
  ingress(program);
  coredns(program);
  iptablesSave(program);
  ipvsadm(program);
  observe(program);
  proxy(program);
  fault(program);
  conntrack(program);
  scenario(program);
}
