import pino from "pino";
import { NodeAgent } from "./agent.ts";
import { parseConfig, type NodeAgentFlags } from "./config.ts";
import { prepareImagePrograms } from "./images/bundle.ts";

/** `klab node-agent`: parse flags, wire the agent, run until SIGTERM/SIGINT. */
export async function run(flags: NodeAgentFlags): Promise<void> {
  const log = pino({ base: { component: "node-agent", node: flags.nodeName } });
  const programs = await prepareImagePrograms(flags.stateDir);
  const agent = new NodeAgent(parseConfig(flags, programs), log);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "node agent stopping; pods keep running");
    agent.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  // One pod's failure must not take the node down: log what escaped and keep serving the others.
  process.on("unhandledRejection", (err) => log.error({ err }, "unhandled rejection"));
  process.on("uncaughtException", (err) => log.error({ err }, "uncaught exception"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  await agent.start();
}
