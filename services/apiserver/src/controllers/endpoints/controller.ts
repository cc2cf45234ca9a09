// The Endpoints and EndpointSlice controllers: every change to a Service, to a pod it selects,
// or to the objects they write requeues the Service, and reconcile(service) writes whatever
// differs from what the pods imply. Services without a selector are left to their users.
import type { EndpointSlice, Endpoints, Node, Pod, Service } from "@klab/api";
import type { ControllerContext, RunningController } from "../context.ts";
import { mapSelectorMatches } from "../labels.ts";
import { NamespaceIndex } from "../nsindex.ts";
import { Controller, isAlreadyExists, isNotFound, keyOf, splitKey } from "../runtime.ts";
import { desiredEndpoints, endpointsEqual } from "./endpoints.ts";
import { SERVICE_NAME_LABEL, lastChangeTriggerTime, managesEndpoints, selectedPods } from "./logic.ts";
import { ownsSlice, planSlices } from "./slices.ts";

function watchServicesAndPods(ctx: ControllerContext, c: Controller) {
  const services = ctx.informers.get<Service>("v1", "services");
  const pods = ctx.informers.get<Pod>("v1", "pods");
  const servicesByNs = new NamespaceIndex(services);
  const podsByNs = new NamespaceIndex(pods);
  const forPod = (p: Pod, old?: Pod) => {
    for (const s of servicesByNs.list(p.metadata.namespace)) {
      if (
        mapSelectorMatches(s.spec?.selector, p.metadata.labels) ||
        (old && mapSelectorMatches(s.spec?.selector, old.metadata.labels))
      ) {
        c.enqueue(keyOf(s));
      }
    }
  };
  services.on("add", (s) => c.enqueue(keyOf(s)));
  services.on("update", (s) => c.enqueue(keyOf(s)));
  services.on("delete", (s) => c.enqueue(keyOf(s)));
  pods.on("add", (p) => forPod(p));
  pods.on("update", (p, old) => forPod(p, old));
  pods.on("delete", (p) => forPod(p));
  return { services, podsByNs };
}

export function endpointsController(ctx: ControllerContext): RunningController {
  const name = "endpoint-controller";
  const log = ctx.logger.child({ controller: name });
  const c = new Controller(name, reconcile, log, ctx.metrics, 2);
  const { services, podsByNs } = watchServicesAndPods(ctx, c);
  const endpoints = ctx.informers.get<Endpoints>("v1", "endpoints");
  // Someone else changed or deleted the Endpoints: put them back.
  endpoints.on("update", (e) => services.get(e.metadata.namespace, e.metadata.name!) && c.enqueue(keyOf(e)));
  endpoints.on("delete", (e) => services.get(e.metadata.namespace, e.metadata.name!) && c.enqueue(keyOf(e)));

  async function reconcile(key: string): Promise<void> {
    const [ns, svcName] = splitKey(key);
    const svc = services.get(ns, svcName);
    const have = endpoints.get(ns, svcName);
    if (!svc) {
      // The Service is gone: so are its Endpoints.
      if (have) await ctx.client.delete("v1", "endpoints", ns, svcName);
      return;
    }
    if (!managesEndpoints(svc)) return;
    const pods = podsByNs.list(ns);
    const want = desiredEndpoints(svc, pods, lastChangeTriggerTime(svc, selectedPods(svc, pods)));
    if (!have) {
      try {
        await ctx.client.create(want);
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        throw err; // the cache is behind: retry against what is there
      }
      return;
    }
    if (endpointsEqual(have, want)) return;
    const next: Endpoints = { ...want, metadata: { ...have.metadata, labels: want.metadata.labels } };
    const annotations = { ...(have.metadata.annotations ?? {}) };
    delete annotations["endpoints.kubernetes.io/over-capacity"];
    Object.assign(annotations, want.metadata.annotations ?? {});
    next.metadata.annotations = annotations;
    if (!want.subsets) delete next.subsets;
    await ctx.client.update(next);
  }

  return {
    name,
    start: () => {
      c.start();
      for (const s of services.list()) c.enqueue(keyOf(s));
    },
    stop: () => c.stop(),
  };
}

export function endpointSliceController(ctx: ControllerContext): RunningController {
  const name = "endpointslice-controller";
  const log = ctx.logger.child({ controller: name });
  const c = new Controller(name, reconcile, log, ctx.metrics, 2);
  const { services, podsByNs } = watchServicesAndPods(ctx, c);
  const slices = ctx.informers.get<EndpointSlice>("discovery.k8s.io/v1", "endpointslices");
  const slicesByNs = new NamespaceIndex(slices);
  const nodes = ctx.informers.get<Node>("v1", "nodes");
  const requeueForSlice = (s: EndpointSlice) => {
    const svc = s.metadata.labels?.[SERVICE_NAME_LABEL];
    if (svc) c.enqueue(`${s.metadata.namespace}/${svc}`);
  };
  slices.on("update", requeueForSlice);
  slices.on("delete", requeueForSlice);
  nodes.on("update", (n, old) => {
    // A zone label change changes the endpoints of every pod on the node.
    if (
      n.metadata.labels?.["topology.kubernetes.io/zone"] !==
      old.metadata.labels?.["topology.kubernetes.io/zone"]
    ) {
      for (const s of services.list()) c.enqueue(keyOf(s));
    }
  });

  /** Slices created and not yet seen in the cache: planning before they show up would duplicate them. */
  const inFlight = new Map<string, { names: Set<string>; at: number }>();

  async function reconcile(key: string): Promise<void> {
    const [ns, svcName] = splitKey(key);
    const pending = inFlight.get(key);
    if (pending) {
      for (const n of pending.names) if (slices.get(ns, n)) pending.names.delete(n);
      if (pending.names.size && Date.now() - pending.at < 30_000) {
        c.enqueueAfter(key, 50);
        return;
      }
      inFlight.delete(key);
    }
    const svc = services.get(ns, svcName);
    const owned = slicesByNs
      .list(ns)
      .filter(
        (s) =>
          s.metadata.labels?.[SERVICE_NAME_LABEL] === svcName &&
          s.metadata.labels?.["endpointslice.kubernetes.io/managed-by"] === "endpointslice-controller.k8s.io",
      );
    if (!svc || !managesEndpoints(svc)) {
      // Slices of a deleted Service go with it (also through their ownerReference).
      for (const s of owned) {
        await ctx.client
          .delete("discovery.k8s.io/v1", "endpointslices", ns, s.metadata.name!)
          .catch((err) => (isNotFound(err) ? undefined : Promise.reject(err)));
      }
      return;
    }
    const pods = podsByNs.list(ns);
    const nodeMap = new Map(nodes.list().map((n) => [n.metadata.name!, n]));
    const plan = planSlices(
      svc,
      pods,
      owned.filter((s) => ownsSlice(svc, s)),
      nodeMap,
      lastChangeTriggerTime(svc, selectedPods(svc, pods)),
    );
    for (const s of plan.create) {
      const created = await ctx.client.create(s);
      const entry = inFlight.get(key) ?? { names: new Set<string>(), at: Date.now() };
      entry.names.add(created.metadata.name!);
      inFlight.set(key, entry);
    }
    for (const s of plan.update) await ctx.client.update(s);
    for (const s of plan.delete) {
      await ctx.client
        .delete("discovery.k8s.io/v1", "endpointslices", ns, s.metadata.name!)
        .catch((err) => (isNotFound(err) ? undefined : Promise.reject(err)));
    }
  }

  return {
    name,
    start: () => {
      c.start();
      for (const s of services.list()) c.enqueue(keyOf(s));
    },
    stop: () => c.stop(),
  };
}
