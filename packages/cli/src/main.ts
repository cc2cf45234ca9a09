import { Command } from "commander";
import { registerCommands } from "./commands.ts";

const program = new Command();
program
  .name("klab")
  .description(
    "klab: a Kubernetes networking lab where every part is a real process and every packet is real",
  )
  .showHelpAfterError();
registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.stderr.write(`klab: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
