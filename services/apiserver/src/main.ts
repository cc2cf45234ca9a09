// Wiring only: flags → config → storage/server → admission hooks and controllers; serve until
// SIGTERM/SIGINT.
import pino from "pino";
import type { Service } from "@klab/api";
import { createServiceAllocationHooks } from "./allocators/service-allocation.ts";
import { startControllers } from "./controllers/index.ts";
import { parseConfig, type ApiServerConfig, type ApiServerFlags } from "./config.ts";
import type { ApiServerOptions } from "./options.ts";
import { createApiServer } from "./server.ts";

/** The in-process parts of the control plane: admission hooks and controllers. */
export function controlPlane(config: ApiServerConfig): Omit<ApiServerOptions, "logger"> {
  const services = createServiceAllocationHooks({
    serviceCIDR: config.serviceCidr,
    nodePortRange: config.nodePortRange,
  });
  return {
    hooks: { services: services.hooks },
    onStorageReady: (storage) => {
      services.allocator.repair(storage.list("services") as Service[]);
    },
    onStarted: (ctx) => startControllers(ctx, { allocator: services.allocator }),
  };
}

export async function run(flags: ApiServerFlags): Promise<void> {
  const config = parseConfig(flags);
  const logger = pino({ name: "apiserver" });
  const server = await createApiServer(config, { ...controlPlane(config), logger });
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
