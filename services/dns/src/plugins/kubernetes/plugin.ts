import {
  Flag,
  Rcode,
  reply,
  wireSlot,
  type Message,
  type Plugin,
  type Request,
  type WireSlot,
} from "../../message.ts";
import { pluginError, type Setup } from "../../setup.ts";
import { answer, type KubeAnswer } from "../../kubernetes/answer.ts";
import type { ClusterSource } from "../../kubernetes/source.ts";
import { parseKubernetes } from "./parse.ts";
import type { EndpointSlice } from "@klab/api";

/** Questions remembered per cluster index; random names cannot grow it past this. */
const MEMO_ENTRIES = 10_000;

const rcodes = {
  NOERROR: Rcode.NOERROR,
  NXDOMAIN: Rcode.NXDOMAIN,
  SERVFAIL: Rcode.SERVFAIL,
  REFUSED: Rcode.REFUSED,
};

/**
 * Answers for the cluster's zones from Services, EndpointSlices, Pods and Namespaces (the pure
 * `answer` does the work); ExternalName targets outside the zones are resolved through this
 * server, as CoreDNS's upstream lookup does.
 */
export const setup: Setup = (dirs, ctx) => {
  const cfg = parseKubernetes(dirs, ctx.zones);
  const m = ctx.runtime.metrics;
  // CoreDNS's DNS programming latency: from the change that triggered the EndpointSlice
  // (its last-change-trigger-time annotation) to this server knowing it.
  const observeProgramming = (slice: EndpointSlice) => {
    const trigger = slice.metadata.annotations?.["endpoints.kubernetes.io/last-change-trigger-time"];
    const svcName = slice.metadata.labels?.["kubernetes.io/service-name"];
    if (!trigger || !svcName) return;
    const at = Date.parse(trigger);
    if (Number.isNaN(at)) return;
    const svc = source.index().services.get(`${slice.metadata.namespace ?? "default"}/${svcName}`);
    const kind =
      svc?.kind !== "Headless"
        ? "cluster_ip"
        : svc.hasSelector
          ? "headless_with_selector"
          : "headless_without_selector";
    m.kubernetesProgramming.observe({ service_kind: kind }, Math.max(0, (Date.now() - at) / 1000));
  };
  let source: ClusterSource;
  try {
    source = ctx.runtime.clusterSources({
      kubeconfig: cfg.kubeconfig,
      endpoint: cfg.endpoint,
      serviceAccountDir: ctx.runtime.serviceAccountDir,
      watchPods: cfg.pods === "verified",
      watchEndpoints: !cfg.noEndpoints,
      onEndpointSliceChange: (slice) => observeProgramming(slice),
      onError: (err, resource) =>
        ctx.runtime.logger.warn({ err: err.message, resource }, "kubernetes: watch failed, retrying"),
    });
  } catch (err) {
    throw pluginError("kubernetes", dirs[0]!, (err as Error).message);
  }
  const { logger, out } = ctx.runtime;
  // Interface addresses only matter for NS answers; reading them per query would be costly.
  let localIPs = ctx.runtime.localIPs();
  const ipTimer = setInterval(() => (localIPs = ctx.runtime.localIPs()), 30_000);
  ipTimer.unref();
  ctx.onShutdown(() => clearInterval(ipTimer));
  ctx.onStartup(async () => {
    const started = source
      .start()
      .catch((err: Error) => logger.error({ err }, "kubernetes: informers failed to start"));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">(
      (r) => (timer = setTimeout(() => r("timeout"), cfg.startupTimeoutMs)),
    );
    const result = await Promise.race([started, timeout]);
    clearTimeout(timer);
    if (result === "timeout" && !source.hasSynced())
      out("[WARNING] plugin/kubernetes: starting server with unsynced Kubernetes API");
  });
  ctx.onShutdown(() => source.stop());
  ctx.ready("kubernetes", () => source.hasSynced());

  // Answers are a function of the question and the index: remembered per index (the index is a
  // new object after every change), with their encoding, so a repeated question costs a lookup.
  const memo = new Map<string, { res: KubeAnswer | undefined; slot?: WireSlot }>();
  let memoFor: { index: unknown; synced: boolean; localIPs: string[] } | undefined;
  const remembered = (q: Request["question"]) => {
    const index = source.index();
    const synced = source.hasSynced();
    if (!memoFor || memoFor.index !== index || memoFor.synced !== synced || memoFor.localIPs !== localIPs) {
      memo.clear();
      memoFor = { index, synced, localIPs };
    }
    const key = `${q.name}|${q.type}|${q.class ?? "IN"}`;
    let hit = memo.get(key);
    if (!hit) {
      const res = answer(q, { index, synced, localIPs }, cfg);
      // ExternalName chasing appends to the answers: those are built per query
      hit = {
        res,
        slot: res && !res.chase ? wireSlot(res.answers, res.authorities, res.additionals) : undefined,
      };
      if (!res?.chase) {
        if (memo.size >= MEMO_ENTRIES) memo.clear();
        memo.set(key, hit);
      }
    }
    return hit;
  };

  const plugin: Plugin = {
    name: "kubernetes",
    async serve(req, next) {
      const { res, slot } = remembered(req.question);
      if (!res || res.fallthrough) return next(req);
      const m: Message = reply(req, rcodes[res.rcode], res.rcode !== "REFUSED");
      if (slot) {
        m.answers = slot.answers;
        m.authorities = slot.authorities;
        m.additionals = slot.additionals;
        m.wire = slot;
        return m;
      }
      m.answers = [...res.answers];
      m.authorities = res.authorities;
      m.additionals = res.additionals;
      if (res.chase) {
        try {
          const up = await ctx.lookup(res.chase.target, res.chase.type);
          m.answers.push(...up.answers);
          if (up.flags & Flag.TC) m.flags |= Flag.TC;
        } catch {
          // CoreDNS drops the CNAME when its target cannot be looked up.
          m.answers = m.answers.filter((a) => a.type !== "CNAME" || String(a.data) !== res.chase!.target);
        }
        if (m.answers.length === 0) m.authorities = res.authorities.length ? res.authorities : [];
      }
      return m;
    },
  };
  return [plugin];
};
