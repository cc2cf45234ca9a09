// Wiring only: flags → config → storage/server → admission hooks and controllers; serve until
// SIGTERM/SIGINT.
import pino from "pino";
import type { Node, Pod, Service } from "@klab/api";
import { kubeletProxyPlugin, nodeKubeletAddress } from "./kubelet-proxy/index.ts";
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
    // pods/log, exec, attach and portforward, proxied to the pod's node's kubelet API.
    routes: async (app, ctx) => {
      await app.register(kubeletProxyPlugin, {
        resolvePod: async (ns, name) => ctx.storage.get("pods", ns, name) as Pod | undefined,
        resolveNodeAddress: async (nodeName) => {
          const node = ctx.storage.get("nodes", "", nodeName) as Node | undefined;
          return node ? nodeKubeletAddress(node) : undefined;
        },
        tls: { token: ctx.token },
        authorizeUpgrade: ctx.authorize,
      });
    },
  };
}

export async function run(flags: ApiServerFlags): Promise<void> {
  const config = parseConfig(flags);
  const logger = pino({ name: "apiserver" });
  // Installed before startup, so a signal during startup still ends in a clean shutdown.
  const signalled = new Promise<string>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  const server = await createApiServer(config, { ...controlPlane(config), logger });
  const signal = await signalled;
  logger.info({ signal }, "shutting down");
  try {
    await server.close();
  } catch (err) {
    logger.error({ err }, "shutdown failed");
    process.exitCode = 1;
  }
  // Everything is closed and flushed; a timer some library left behind must not keep us alive.
  process.exit();
}
