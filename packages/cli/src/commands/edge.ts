import type { Command } from "commander";

export function register(program: Command): void {
  program
    .command("edge")
    .description(
      "run the edge: LoadBalancer addresses and forwarding, host publishing, the emulated internet",
    )
    .option("--kubeconfig <path>", "kubeconfig (default: $KUBECONFIG or in-cluster)")
    .option("--pool <range>", "LoadBalancer address pool", "172.29.255.200-172.29.255.250")
    .option("--interface <dev>", "interface that holds LoadBalancer and internet addresses")
    .option("--manage-routes", "route each node's podCIDR through that node", false)
    .option(
      "--publish <mapping...>",
      "LISTEN=NAMESPACE/SERVICE:PORT, e.g. tcp:0.0.0.0:8080=ingress-nginx/ingress-nginx-controller:80",
    )
    .option("--internet", "serve the emulated internet (api.example.com, DNS for example.com)", false)
    .option("--metrics-port <port>", "Prometheus metrics and /healthz", "9101")
    .action(
      async (o: {
        kubeconfig?: string;
        pool: string;
        interface?: string;
        manageRoutes: boolean;
        publish?: string[];
        internet: boolean;
        metricsPort: string;
      }) => {
        const { run } = await import("@klab/edge");
        await run({ ...o, publish: o.publish ?? [], metricsPort: Number(o.metricsPort) });
      },
    );
}
