import { Command } from "commander";
import pino from "pino";
import { run } from "./app.ts";

// kube-proxy's command line (the flags the real binary takes, `--flag=value` or `--flag value`),
// shared by src/main.ts and `klab proxy`. SIGTERM stops cleanly.

export async function runKubeProxyCli(argv: string[]): Promise<void> {
  const log = pino({ name: "kube-proxy" });
  const program = new Command()
    .name("kube-proxy")
    .exitOverride()
    .option("--kubeconfig <path>", "kubeconfig (default: clientConnection.kubeconfig, else in-cluster)")
    .option("--hostname-override <name>", "the Node this proxy serves")
    .option("--node-ip <ip...>", "node addresses, until the Node object lists them")
    .option("--nat-socket <path>", "the node dataplane's loader socket (default $KLAB_NAT_SOCKET)")
    .option("--config <file>", "a KubeProxyConfiguration file instead of ConfigMap kube-system/kube-proxy")
    .option("--proxy-mode <mode>", "iptables, ipvs or userspace (overrides the configuration)")
    .option("--cluster-cidr <cidr>", "pod address range, for masquerade decisions")
    .option("--healthz-bind-address <host:port>", "default 0.0.0.0:10256")
    .option("--metrics-bind-address <host:port>", "default 127.0.0.1:10249")
    .option("--v <level>", "log verbosity (accepted for compatibility)");
  program.parse(argv, { from: "user" });
  const o = program.opts<{
    kubeconfig?: string;
    hostnameOverride?: string;
    nodeIp?: string[];
    natSocket?: string;
    config?: string;
    proxyMode?: "iptables" | "ipvs" | "userspace";
    clusterCidr?: string;
    healthzBindAddress?: string;
    metricsBindAddress?: string;
  }>();
  if (o.proxyMode && !["iptables", "ipvs", "userspace"].includes(o.proxyMode)) {
    throw new Error(`--proxy-mode ${o.proxyMode}: use iptables, ipvs or userspace`);
  }
  const proxy = await run({
    kubeconfig: o.kubeconfig,
    nodeName: o.hostnameOverride,
    nodeIPs: o.nodeIp,
    natSocket: o.natSocket,
    configFile: o.config,
    overrides: {
      mode: o.proxyMode,
      clusterCIDR: o.clusterCidr,
      healthzBindAddress: o.healthzBindAddress,
      metricsBindAddress: o.metricsBindAddress,
    },
    log,
  });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    await proxy.stop();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}
