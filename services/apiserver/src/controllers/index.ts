// startControllers: the controllers that run inside the API server process, as
// kube-controller-manager and kube-scheduler run beside kube-apiserver. They talk to the server
// over HTTPS with the admin token, through shared informers, like any other client.
import { KubeClient } from "@klab/client";
import type { ServiceAllocator } from "../allocators/service-allocation.ts";
import type { Controllers, StartedContext } from "../options.ts";
import {
  defaultSettings,
  type ControllerContext,
  type ControllerSettings,
  type RunningController,
} from "./context.ts";
import { endpointSliceController, endpointsController } from "./endpoints/controller.ts";
import { EventRecorder } from "./events.ts";
import { gcController } from "./lifecycle/gc.ts";
import { namespaceController } from "./lifecycle/namespace.ts";
import { podGcController } from "./lifecycle/podgc.ts";
import { nodeIpamController } from "./nodes/ipam.ts";
import { nodeLifecycleController } from "./nodes/lifecycle.ts";
import { InformerFactory, controllerMetrics } from "./runtime.ts";
import { schedulerController } from "./scheduler/controller.ts";
import { serviceRepairController } from "./service-repair.ts";
import { serviceAccountsController } from "./serviceaccounts.ts";
import { daemonSetController } from "./workloads/daemonset.ts";
import { deploymentController } from "./workloads/deployment.ts";
import { replicaSetController } from "./workloads/replicaset.ts";

export type { ControllerSettings } from "./context.ts";
export { defaultSettings } from "./context.ts";

export interface StartControllersOptions {
  /** The allocator behind the "services" admission hooks: its repair loop runs here. */
  allocator?: ServiceAllocator;
  /** Overrides of the defaults (timings for tests; CIDRs come from the server config). */
  settings?: Partial<ControllerSettings>;
  /** Controllers to leave out, by name (e.g. "scheduler" when nodes schedule themselves). */
  disable?: string[];
}

export async function startControllers(
  started: StartedContext,
  options: StartControllersOptions = {},
): Promise<Controllers> {
  const logger = started.logger.child({ component: "kube-controller-manager" });
  const client = new KubeClient({ server: started.url, caPem: started.caPem, token: started.token });
  const informers = new InformerFactory(client, logger);
  const settings: ControllerSettings = {
    ...defaultSettings,
    clusterCIDR: started.config.clusterCidr,
    serviceCIDR: started.config.serviceCidr,
    advertiseAddress: started.config.advertiseAddress,
    securePort: Number(new URL(started.url).port),
    ...options.settings,
  };
  const ctx: ControllerContext = {
    client,
    informers,
    events: new EventRecorder(client, logger),
    logger,
    metrics: controllerMetrics(started.metrics),
    registry: started.metrics,
    settings,
  };
  const all: RunningController[] = [
    nodeIpamController(ctx),
    nodeLifecycleController(ctx),
    schedulerController(ctx),
    replicaSetController(ctx),
    deploymentController(ctx),
    daemonSetController(ctx),
    endpointsController(ctx),
    endpointSliceController(ctx),
    namespaceController(ctx),
    gcController(ctx),
    podGcController(ctx),
    serviceAccountsController(ctx, started.caPem),
  ];
  if (options.allocator) all.push(serviceRepairController(ctx, options.allocator));
  const disabled = new Set(options.disable ?? []);
  const running = all.filter((c) => !disabled.has(c.name));
  // Informers made by disabled controllers still start; they only cost a watch each.
  await informers.startAll();
  for (const c of running) c.start();
  logger.info({ controllers: running.map((c) => c.name) }, "controllers started");
  return {
    async stop() {
      informers.stopAll();
      await Promise.allSettled(running.map((c) => c.stop()));
      await client.close();
    },
  };
}
