// Wiring only: flags → config → storage/server → controllers; serve until SIGTERM/SIGINT.
import pino from "pino";
import { parseConfig, type ApiServerFlags } from "./config.ts";
import type { ApiServerOptions } from "./options.ts";
import { createApiServer } from "./server.ts";

/**
 * Runs the control plane until a signal. `wire` is the controllers' hook point: it receives the
 * config and returns the admission hooks and onStarted to pass to the server.
 */
export async function run(
  flags: ApiServerFlags,
  wire?: (config: ReturnType<typeof parseConfig>) => Omit<ApiServerOptions, "logger">,
): Promise<void> {
  const config = parseConfig(flags);
  const logger = pino({ name: "apiserver" });
  const server = await createApiServer(config, { ...(wire?.(config) ?? {}), logger });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, "shutting down");
      server.close().then(resolve, (err: unknown) => {
        logger.error({ err }, "shutdown failed");
        resolve();
      });
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}
