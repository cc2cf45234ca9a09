import { Command } from "commander";
import pino from "pino";
import { run } from "./app.ts";

// Entry point: flags → run(); SIGTERM stops cleanly.

const log = pino({ name: "kube-proxy" });
const program = new Command()
  .name("kube-proxy")
  .option("--kubeconfig <path>", "kubeconfig (default: in-cluster service account)")
  .option("--hostname-override <name>", "the Node this proxy serves")
  .option("--node-ip <ip...>", "node addresses, until the Node object lists them")
  .option("--nat-socket <path>", "the node dataplane's loader socket (<node state dir>/nat.sock)")
  .option("--config <file>", "a KubeProxyConfiguration file instead of ConfigMap kube-system/kube-proxy")
  .option("--proxy-mode <mode>", "iptables, ipvs or userspace (overrides the configuration)")
  .option("--cluster-cidr <cidr>", "pod address range, for masquerade decisions")
  .option("--healthz-bind-address <host:port>", "default 0.0.0.0:10256")
  .option("--metrics-bind-address <host:port>", "default 127.0.0.1:10249")
  .parse();
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

try {
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
} catch (err) {
  log.error({ err: (err as Error).message }, "kube-proxy failed to start");
  process.exit(1);
}
