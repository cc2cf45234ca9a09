import { hostname } from "node:os";
import type { Command } from "commander";
import { controlPlane, edge, health, node } from "../container/roles.ts";

export function register(program: Command): void {
  program
    .command("role")
    .description("run one role of the lab inside a container (used by docker-compose.yml)")
    .argument("<role>", "control-plane, node or edge")
    .option("--name <name>", "the Node's name (node role)", hostname())
    .option("--out-dir <dir>", "where the control plane writes the host's kubeconfig")
    .action(async (role: string, opts: { name: string; outDir?: string }) => {
      if (role === "control-plane") await controlPlane(opts.outDir);
      else if (role === "node") await node(opts.name);
      else if (role === "edge") await edge();
      else throw new Error(`unknown role "${role}": use control-plane, node or edge`);
    });

  program
    .command("role-health")
    .description("exit 0 when this container's role is ready (Docker healthcheck)")
    .argument("<role>", "control-plane, node or edge")
    .option("--name <name>", "the Node's name (node role)", hostname())
    .action(async (role: string, opts: { name: string }) => {
      process.exitCode = (await health(role, opts.name)) ? 0 : 1;
    });
}
