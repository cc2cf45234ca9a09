import type { Command } from "commander";

export function register(program: Command): void {
  program
    .command("apiserver")
    .description("run the Kubernetes API server (with its controllers) and write DIR/kubeconfig")
    .requiredOption("--state-dir <dir>", "database, PKI, admin token and kubeconfig live here")
    .option("--port <port>", "HTTPS port (0 picks a free one)", "6443")
    .option("--bind <ip>", "address to listen on", "127.0.0.1")
    .option("--advertise-address <ip>", "address the kubernetes Endpoints point at (default: --bind)")
    .option("--service-cidr <cidr>", "Service ClusterIP range", "10.96.0.0/12")
    .option("--cluster-cidr <cidr>", "Pod address range, split per node", "10.244.0.0/16")
    .option("--node-port-range <a-b>", "NodePort range", "30000-32767")
    .option("--tls-san <name...>", "more names or IPs for the serving certificate")
    .action(
      async (o: {
        stateDir: string;
        port: string;
        bind: string;
        advertiseAddress?: string;
        serviceCidr: string;
        clusterCidr: string;
        nodePortRange: string;
        tlsSan?: string[];
      }) => {
        const { run } = await import("@klab/apiserver");
        await run({
          stateDir: o.stateDir,
          port: o.port,
          bind: o.bind,
          advertiseAddress: o.advertiseAddress,
          serviceCidr: o.serviceCidr,
          clusterCidr: o.clusterCidr,
          nodePortRange: o.nodePortRange,
          extraSans: o.tlsSan,
        });
      },
    );
}
