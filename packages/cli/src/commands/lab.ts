import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { down, status, up } from "../native/lab.ts";
import { labHome, planLab, type LabOptions, type LabPlan } from "../native/plan.ts";

const progress = (line: string) => process.stdout.write(`• ${line}\n`);

/** The options a lab was made with, kept so later commands see the same layout. */
function savedOptions(name: string): LabOptions | undefined {
  const file = join(labHome(), name, "lab.json");
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, "utf8")) as LabOptions;
}

function existingPlan(name: string): LabPlan {
  return planLab(savedOptions(name) ?? { name, nodes: 1, apiPort: 6443, proxyMode: "iptables" });
}

interface UpFlags {
  name: string;
  nodes: string;
  apiPort: string;
  proxyMode: string;
  httpPort: string;
  httpsPort: string;
  bare?: boolean;
  controlPlaneOnly?: boolean;
}

export function register(program: Command): void {
  program
    .command("up")
    .description("create a lab on this Linux machine: a control plane and N nodes in network namespaces")
    .option("--name <name>", "the lab's name", "klab")
    .option("--nodes <n>", "how many nodes", "2")
    .option("--api-port <port>", "the API server's port on 127.0.0.1", "6443")
    .option("--proxy-mode <mode>", "kube-proxy mode: iptables, ipvs or userspace", "iptables")
    .option("--http-port <port>", "the ingress's HTTP port on 127.0.0.1", "8080")
    .option("--https-port <port>", "the ingress's HTTPS port on 127.0.0.1", "8443")
    .option("--bare", "do not deploy the reference guide's example application")
    .option("--control-plane-only", "start no node agents")
    .action(async (opts: UpFlags) => {
      const options: LabOptions = {
        name: opts.name,
        nodes: Number(opts.nodes),
        apiPort: Number(opts.apiPort),
        proxyMode: opts.proxyMode as LabOptions["proxyMode"],
        httpPort: Number(opts.httpPort),
        httpsPort: Number(opts.httpsPort),
        bare: opts.bare ?? false,
      };
      const previous = savedOptions(opts.name);
      if (previous && previous.nodes !== options.nodes) {
        progress(`lab ${opts.name} exists with ${previous.nodes} nodes; keeping it as it is`);
        options.nodes = previous.nodes;
      }
      const plan = planLab(options);
      mkdirSync(plan.stateDir, { recursive: true });
      writeFileSync(join(plan.stateDir, "lab.json"), JSON.stringify(options, null, 2));
      await up(plan, progress, { withNodes: !opts.controlPlaneOnly });
      const https = plan.ingress.httpsPort;
      process.stdout.write(
        `\nThe lab is up. Try:\n  kubectl --kubeconfig ${plan.kubeconfig} get nodes -o wide\n` +
          (plan.bare
            ? ""
            : `  curl -k --resolve myapp.com:${https}:127.0.0.1 https://myapp.com:${https}/api\n`),
      );
    });

  program
    .command("down")
    .description("remove a lab: every process, network namespace, link and file it made")
    .option("--name <name>", "the lab's name", "klab")
    .action(async (opts: { name: string }) => {
      await down(existingPlan(opts.name), progress);
    });

  program
    .command("status")
    .description("show a lab's namespaces and processes")
    .option("--name <name>", "the lab's name", "klab")
    .action(async (opts: { name: string }) => {
      const s = await status(existingPlan(opts.name));
      if (!s.namespaces.length && !s.processes.length) {
        process.stdout.write(
          `lab ${opts.name} is not running (start it with: npx klab up --name ${opts.name})\n`,
        );
        return;
      }
      process.stdout.write(`lab ${s.name}  state ${s.stateDir}\n`);
      process.stdout.write(`${"PROCESS".padEnd(28)}PID\n`);
      for (const p of s.processes) process.stdout.write(`${p.id.padEnd(28)}${p.pid ?? "<not running>"}\n`);
      process.stdout.write(`network namespaces: ${s.namespaces.join(" ") || "<none>"}\n`);
      if (s.kubeconfig) process.stdout.write(`kubeconfig: ${s.kubeconfig}\n`);
    });

  program
    .command("kubeconfig")
    .description("print the path of a lab's kubeconfig")
    .option("--name <name>", "the lab's name", "klab")
    .action((opts: { name: string }) => {
      const plan = existingPlan(opts.name);
      if (!existsSync(plan.kubeconfig)) {
        throw new Error(
          `lab ${opts.name} has no kubeconfig yet: start it with npx klab up --name ${opts.name}`,
        );
      }
      process.stdout.write(`${plan.kubeconfig}\n`);
    });

  program
    .command("exec-node")
    .description("run a command in a node's network namespace, e.g. klab exec-node node-1 -- ip route")
    .argument("<node>", "the node's name (node-1, node-2, …) or control-plane")
    .argument("<command...>", "the command and its arguments")
    .option("--name <name>", "the lab's name", "klab")
    .action((node: string, command: string[], opts: { name: string }) => {
      const plan = existingPlan(opts.name);
      const member = [plan.controlPlane, ...plan.nodes].find((m) => m.role === node);
      if (!member) {
        throw new Error(
          `lab ${opts.name} has no node "${node}" (nodes: ${plan.nodes.map((n) => n.role).join(", ")})`,
        );
      }
      const result = spawnSync("ip", ["netns", "exec", member.netns, ...command], { stdio: "inherit" });
      process.exitCode = result.status ?? 1;
    });
}
