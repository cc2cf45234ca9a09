import type { Command } from "commander";

/**
 * `klab coredns -conf FILE [-dns.port N]`: the DNS server on its own, flags as the coredns
 * binary spells them (single dash, Go style), which commander would read as bundled short
 * options: the command takes its arguments raw and parses them itself.
 */
export function register(program: Command): void {
  program
    .command("coredns")
    .description("run the CoreDNS-compatible DNS server: klab coredns -conf FILE [-dns.port N]")
    .helpOption(false)
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .argument(
      "[flags...]",
      "coredns flags: -conf FILE, -dns.port N, -pidfile FILE, -quiet, -plugins, -version",
    )
    .action(async (flags: string[]) => {
      const { runCoredns } = await import("@klab/dns/main.ts");
      await runCoredns(flags);
    });
}
