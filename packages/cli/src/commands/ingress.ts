import type { Command } from "commander";

function port(v: string, flag: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new Error(`${flag} must be a port number (0-65535), got '${v}'`);
  return n;
}

export function register(program: Command): void {
  program
    .command("ingress")
    .description("run the NGINX-like ingress controller (ingress-nginx-controller) against a cluster")
    .option("--kubeconfig <path>", "kubeconfig to use (default: the in-cluster service account)")
    .option("--http-port <port>", "HTTP port", "80")
    .option("--https-port <port>", "HTTPS port", "443")
    .option("--healthz-port <port>", "port of /healthz and /metrics", "10254")
    .option("--bind <ip>", "address to listen on", "0.0.0.0")
    .option(
      "--ingress-class <name>",
      "value of the legacy kubernetes.io/ingress.class annotation to serve",
      "nginx",
    )
    .option(
      "--controller-class <name>",
      "IngressClass spec.controller this controller owns",
      "k8s.io/ingress-nginx",
    )
    .option("--watch-ingress-without-class", "also serve Ingresses without any class", false)
    .option(
      "--publish-service <ns/name>",
      "Service whose address goes into Ingress status",
      "ingress-nginx/ingress-nginx-controller",
    )
    .option("--no-update-status", "do not write Ingress status")
    // one replica per lab: leader election has nothing to elect, the flag is accepted as ingress-nginx's
    .option(
      "--election-id <id>",
      "ConfigMap/Lease name used for leader election",
      "ingress-controller-leader",
    )
    .action(
      async (o: {
        kubeconfig?: string;
        httpPort: string;
        httpsPort: string;
        healthzPort: string;
        bind: string;
        ingressClass: string;
        controllerClass: string;
        watchIngressWithoutClass: boolean;
        publishService: string;
        updateStatus: boolean;
      }) => {
        const { runIngressController } = await import("@klab/ingress/main.ts");
        await runIngressController({
          kubeconfig: o.kubeconfig,
          httpPort: port(o.httpPort, "--http-port"),
          httpsPort: port(o.httpsPort, "--https-port"),
          healthzPort: port(o.healthzPort, "--healthz-port"),
          address: o.bind,
          ingressClass: o.ingressClass,
          controllerClass: o.controllerClass,
          watchIngressWithoutClass: o.watchIngressWithoutClass,
          publishService: o.publishService || undefined,
          updateStatus: o.updateStatus,
        });
      },
    );
}
