import type { Command } from "commander";
import { natRequest } from "@klab/dataplane/nat/loader.ts";
import { natSocketFor } from "./iptables-save.ts";

// `klab ipvsadm --node NODE -Ln [--stats]`: the node's IPVS table as ipvsadm prints it.

function service(flag: string, protocol: "TCP" | "UDP", value: string | undefined) {
  if (value === undefined) return undefined;
  const m = /^(\d+\.\d+\.\d+\.\d+):(\d{1,5})$/.exec(value);
  if (!m) throw new Error(`${flag} ${value}: expected ADDRESS:PORT, e.g. ${flag} 10.96.0.10:53`);
  return { protocol, address: m[1], port: Number(m[2]) };
}

export function register(program: Command): void {
  program
    .command("ipvsadm")
    .description("print a node's IPVS virtual servers (kube-proxy ipvs mode) as ipvsadm -Ln does")
    .option("--node <node>", "the Node whose dataplane to read")
    .option("--name <name>", "the lab's name", "klab")
    .option("--socket <path>", "the node dataplane's loader socket (overrides --node/--name)")
    .option("-L, --list", "list the table (the default)")
    .option("-l", "list the table (same as -L)")
    .option("-n, --numeric", "numeric addresses and ports (always numeric here)")
    .option("--stats", "connection, packet and byte counters")
    .option("--exact", "exact numbers with --stats")
    .option("-t, --tcp-service <address:port>", "only this TCP virtual server")
    .option("-u, --udp-service <address:port>", "only this UDP virtual server")
    .action(
      async (o: {
        node?: string;
        name: string;
        socket?: string;
        stats?: boolean;
        exact?: boolean;
        tcpService?: string;
        udpService?: string;
      }) => {
        const svc = service("-t", "TCP", o.tcpService) ?? service("-u", "UDP", o.udpService);
        const res = await natRequest(natSocketFor(o), {
          op: "ipvsadm",
          stats: !!o.stats,
          exact: !!o.exact,
          service: svc,
        });
        if (!res.ok) throw new Error(res.error);
        process.stdout.write(res.text ?? "");
        const status = await natRequest(natSocketFor(o), { op: "status" });
        if (status.ok && status.mode !== "ipvs") {
          process.stderr.write(
            `note: kube-proxy on this node runs in ${status.mode} mode; the IPVS table is empty (see klab iptables-save)\n`,
          );
        }
      },
    );
}
