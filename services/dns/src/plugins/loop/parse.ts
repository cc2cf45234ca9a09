import type { Directive } from "../../corefile/parse.ts";
import { argError, pluginError } from "../../setup.ts";

/** `loop` takes no arguments. */
export function parseLoop(dirs: Directive[]): void {
  if (dirs.length > 1) throw pluginError("loop", dirs[1]!, "plugin can only be used once per server block");
  if (dirs[0]!.args.length > 0 || dirs[0]!.block) throw argError("loop", dirs[0]!);
}
