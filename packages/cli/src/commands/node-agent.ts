import type { Command } from "commander";

export function register(program: Command): void {
  program
    .command("node-agent")
    .description(
      "run a node: register it, run the pods bound to it in network namespaces, serve the kubelet API on :10250",
    )
    .requiredOption("--kubeconfig <path>", "kubeconfig to reach the API server")
    .requiredOption("--node-name <name>", "the Node's name")
    .requiredOption("--node-ip <ip>", "the node's InternalIP")
    .requiredOption(
      "--state-dir <dir>",
      "pod state, logs, IPAM; a restarted agent adopts the pods recorded here",
    )
    .option("--cluster-dns <ips>", "kube-dns Service IP(s), comma-separated", "10.96.0.10")
    .option("--cluster-domain <domain>", "cluster domain", "cluster.local")
    .option("--netns-prefix <prefix>", "pod network namespaces are <prefix>-<node>-<uid8>", "klab")
    .option("--node-netns <name>", "namespace holding the node bridge (default: the agent's own)")
    .option("--kubelet-port <port>", "kubelet API port (0 picks a free one)", "10250")
    .option(
      "--resolv-conf <path>",
      "the node's resolver config, used for dnsPolicy Default",
      "/etc/resolv.conf",
    )
    .option("--pod-routes <cidrs>", "destinations pods route via their gateway (no default route)")
    .option(
      "--pod-network <kind>",
      "tun: eth0 is a TUN into the userspace dataplane; bridge: a veth into a kernel bridge (default: tun when /dev/net/tun exists)",
    )
    .option("--no-overlay", "no VXLAN overlay socket (a single node)")
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const { run } = await import("@klab/node-agent");
      try {
        await run({
          kubeconfig: String(o.kubeconfig),
          nodeName: String(o.nodeName),
          nodeIP: String(o.nodeIp),
          stateDir: String(o.stateDir),
          clusterDns: o.clusterDns as string | undefined,
          clusterDomain: o.clusterDomain as string | undefined,
          netnsPrefix: o.netnsPrefix as string | undefined,
          nodeNetns: o.nodeNetns as string | undefined,
          kubeletPort: o.kubeletPort as string | undefined,
          resolvConf: o.resolvConf as string | undefined,
          podRoutes: o.podRoutes as string | undefined,
          podNetwork: o.podNetwork as string | undefined,
          overlay: o.overlay !== false,
        });
      } catch (err) {
        process.stderr.write(`klab node-agent: ${(err as Error).message}\n`);
        process.exit(1);
      }
    });
}
