// The ClusterIP/NodePort repair loop (kube's ipallocator and portallocator Repair controllers):
// every stored Service's values are marked taken as soon as they are seen, and a periodic pass
// frees values no Service holds any more.
import type { Service } from "@klab/api";
import type { ServiceAllocator } from "../allocators/service-allocation.ts";
import type { ControllerContext, RunningController } from "./context.ts";

export function serviceRepairController(
  ctx: ControllerContext,
  allocator: ServiceAllocator,
): RunningController {
  const log = ctx.logger.child({ controller: "service-allocator-repair" });
  const services = ctx.informers.get<Service>("v1", "services");
  let timer: NodeJS.Timeout | undefined;
  services.on("add", (s) => allocator.claim(s));
  services.on("update", (s) => allocator.claim(s));

  const pass = () => {
    const r = allocator.repair(services.list());
    for (const msg of r.conflicts) log.warn({ conflict: msg }, "the same value is held by two Services");
    for (const msg of r.outOfRange)
      log.warn({ problem: msg }, "a Service holds a value outside the configured range");
    if (r.claimed || r.released)
      log.info({ claimed: r.claimed, released: r.released }, "repaired service allocations");
  };

  return {
    name: "service-allocator-repair",
    start: () => {
      pass();
      timer = setInterval(pass, ctx.settings.serviceRepairPeriodMs);
      timer.unref?.();
    },
    stop: async () => {
      if (timer) clearInterval(timer);
    },
  };
}
