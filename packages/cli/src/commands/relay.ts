import type { Command } from "commander";
import { endpointText, parseEndpoint, startRelay } from "../relay.ts";

export function register(program: Command): void {
  program
    .command("relay")
    .description("relay connections from one endpoint to another (tcp:HOST:PORT or unix:PATH)")
    .requiredOption("--listen <endpoint>", "where to accept, e.g. tcp:127.0.0.1:6443")
    .requiredOption("--connect <endpoint>", "where to connect, e.g. unix:/run/klab/apiserver.sock")
    .action(async (opts: { listen: string; connect: string }) => {
      const listen = parseEndpoint(opts.listen);
      const target = parseEndpoint(opts.connect);
      const relay = await startRelay(listen, target);
      process.stdout.write(`relaying ${endpointText(listen)} -> ${endpointText(target)}\n`);
      const stop = () => void relay.close().then(() => process.exit(0));
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
    });
}
