import type { Command } from "commander";

/**
 * `klab proxy [kube-proxy flags]`: klab's kube-proxy, with the real binary's flags
 * (--config=FILE, --hostname-override=NAME, …) passed through as they are.
 */
export function register(program: Command): void {
  program
    .command("proxy")
    .description(
      "run kube-proxy for one node: klab proxy --config FILE --hostname-override NODE [--nat-socket PATH]",
    )
    .helpOption(false)
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .argument("[flags...]", "kube-proxy flags")
    .action(async (flags: string[]) => {
      const { runKubeProxyCli } = await import("@klab/proxy/cli.ts");
      await runKubeProxyCli(flags);
    });
}
