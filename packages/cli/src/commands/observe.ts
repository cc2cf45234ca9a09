import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import type { Pod } from "@klab/api";
import { KubeClient } from "@klab/client";
import type { FlowEvent, Verdict } from "@klab/dataplane";
import { flowsSocketPath, readFlows, type FlowsRequest } from "@klab/dataplane/policy/flow-socket.ts";
import { labHome } from "../native/plan.ts";

// `klab observe [--verdict DROPPED|FORWARDED] [--pod NS/NAME] [-f]`: the nodes' flow events,
// one line per flow as `hubble observe` prints them, naming the NetworkPolicy that allowed a
// flow or saying that policy denied it.

export interface PodInfo {
  namespace: string;
  name: string;
  labels: Record<string, string>;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** Go's time.StampMilli ("Jan _2 15:04:05.000"), in UTC, as Hubble prints times. */
export function stampMilli(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return (
    `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, " ")} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds(), 3)}`
  );
}

/**
 * A Cilium-style security identity: one number per distinct set of namespace + labels, so pods
 * of one Deployment share it (Cilium allocates them from 256 up; here they are derived by hash).
 */
export function identityOf(pod: PodInfo): number {
  const key = [
    `k8s:io.kubernetes.pod.namespace=${pod.namespace}`,
    ...Object.entries(pod.labels)
      .filter(([k]) => k !== "pod-template-hash")
      .map(([k, v]) => `k8s:${k}=${v}`)
      .sort(),
  ].join(";");
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return 256 + (h % (65536 - 256));
}

function endpointText(ip: string, port: number, pods: Map<string, PodInfo>, nodeIPs: Set<string>): string {
  const pod = pods.get(ip);
  const portText = port ? `:${port}` : "";
  if (pod) return `${pod.namespace}/${pod.name}${portText} (ID:${identityOf(pod)})`;
  if (nodeIPs.has(ip)) return `${ip}${portText} (host)`;
  return `${ip}${portText} (world)`;
}

function protocolSummary(e: FlowEvent): string {
  if (e.protocol === "TCP") return `TCP Flags: ${(e.state ?? "SYN").replace(/\|/g, ", ")}`;
  if (e.protocol === "ICMP") return "ICMPv4 EchoRequest";
  return e.protocol;
}

/** INGRESS or EGRESS for an allowing policy, when the namespaces tell it apart. */
function directionOf(policy: string, src?: PodInfo, dst?: PodInfo): string {
  const ns = policy.split("/")[0];
  if (dst && ns === dst.namespace && ns !== src?.namespace) return "INGRESS";
  if (src && ns === src.namespace && ns !== dst?.namespace) return "EGRESS";
  return "";
}

/**
 * One connection as the nodes saw it: a cross-node flow is recorded by the source's node
 * (egress verdict) and by the destination's node (ingress verdict, source "overlay").
 */
export interface ObservedFlow {
  event: FlowEvent;
  egress?: string;
  ingress?: string;
  /** Policies whose direction the events do not tell. */
  other?: string;
}

function flowKeyOf(e: FlowEvent): string {
  const dst = e.natDst ?? e.dst;
  return `${e.type === "end" ? "end" : "new"} ${e.protocol} ${e.src.ip}:${e.src.port} ${dst.ip}:${dst.port}`;
}

/** Merges the events of one connection seen on several nodes (pure; order kept). */
export function mergeFlows(events: FlowEvent[]): ObservedFlow[] {
  const byKey = new Map<string, ObservedFlow>();
  const out: ObservedFlow[] = [];
  for (const e of events) {
    const key = flowKeyOf(e);
    let f = byKey.get(key);
    if (!f || (f.event.type === "drop" && e.type === "drop" && f.event.node === e.node)) {
      // A retransmitted SYN dropped again on the same node is a new line, as Hubble shows it.
      f = { event: e };
      byKey.set(key, f);
      out.push(f);
    } else if (e.verdict !== "FORWARDED" || (e.source === "pod" && f.event.verdict === "FORWARDED")) {
      // The drop decides; otherwise prefer the source node's view (it has the pre-NAT address).
      f.event = { ...e, policy: f.event.policy ?? e.policy };
    }
    const names = e.policy?.split(",") ?? [];
    if (e.source === "overlay") f.ingress = names[0] ?? f.ingress;
    else if (names.length === 2) [f.egress, f.ingress] = names;
    else if (names.length === 1) {
      if (events.some((o) => o !== e && o.node !== e.node && flowKeyOf(o) === key)) f.egress = names[0];
      else f.other = names[0];
    }
  }
  return out;
}

/** One connection as a Hubble compact line. */
export function formatFlow(f: ObservedFlow, pods: Map<string, PodInfo>, nodeIPs = new Set<string>()): string {
  const e = f.event;
  const src = e.src;
  const dst = e.natDst ?? e.dst;
  const srcPod = pods.get(src.ip);
  const dstPod = pods.get(dst.ip);
  const from = endpointText(src.ip, src.port, pods, nodeIPs);
  const to = endpointText(dst.ip, dst.port, pods, nodeIPs);
  const summary = `(${protocolSummary(e)})`;
  const via = e.natDst ? ` via ${e.dst.ip}:${e.dst.port}` : "";
  const head = `${stampMilli(e.time)}: ${from}`;
  if (e.verdict === "DROPPED") {
    const m = /^policy-denied-(ingress|egress)$|is isolated for (ingress|egress)/.exec(e.reason ?? "");
    if (m) {
      // The policy stage's reason names the direction in which the pod is isolated.
      return `${head} <> ${to}${via} policy-verdict:none ${(m[1] ?? m[2]).toUpperCase()} DENIED ${summary} DROPPED (Policy denied)`;
    }
    return `${head} <> ${to}${via} ${summary} DROPPED (${e.reason ?? "unknown"})`;
  }
  if (e.verdict === "REJECTED")
    return `${head} <> ${to}${via} ${summary} REJECTED (${e.reason ?? "rejected"})`;
  if (e.type === "end")
    return `${head} -> ${to}${via} ${summary} ${e.state ?? ""} closed (${e.reason ?? ""})`;
  const allowed: string[] = [];
  if (f.egress) allowed.push(`EGRESS ALLOWED by ${f.egress}`);
  if (f.ingress) allowed.push(`INGRESS ALLOWED by ${f.ingress}`);
  if (f.other) {
    const d = directionOf(f.other, srcPod, dstPod);
    allowed.push(`${d ? d + " " : ""}ALLOWED by ${f.other}`);
  }
  const verdict = allowed.length ? `policy-verdict:L3-L4 ${allowed.join(", ")}` : "to-endpoint";
  return `${head} -> ${to}${via} ${verdict} ${summary} FORWARDED`;
}

function nodeSockets(lab: string): string[] {
  const dir = join(labHome(), lab, "nodes");
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((n) => flowsSocketPath(join(dir, n)))
    .filter((p) => existsSync(p));
}

interface Options {
  verdict?: string;
  pod?: string;
  follow?: boolean;
  last: string;
  node?: string[];
  socket?: string[];
  name: string;
  kubeconfig?: string;
  output: string;
}

export function register(program: Command): void {
  program
    .command("observe")
    .description("print the nodes' flows (new connections and drops) as hubble observe does")
    .option("--verdict <verdict>", "only flows with this verdict: FORWARDED, DROPPED or REJECTED")
    .option("--pod <namespace/name>", "only flows from or to this pod")
    .option("-f, --follow", "keep printing new flows")
    .option("--last <n>", "how many recent flows to print per node", "20")
    .option("--node <node...>", "only these nodes (default: every node of the lab)")
    .option("--socket <path...>", "read these flows sockets (overrides --node/--name)")
    .option("--name <name>", "the lab's name", "klab")
    .option("--kubeconfig <path>", "kubeconfig to resolve pod names (default: the lab's)")
    .option("-o, --output <format>", "compact or json", "compact")
    .action(async (o: Options) => {
      const verdict = o.verdict?.toUpperCase();
      if (verdict !== undefined && !["FORWARDED", "DROPPED", "REJECTED"].includes(verdict))
        throw new Error(`--verdict ${o.verdict}: use FORWARDED, DROPPED or REJECTED`);
      if (!/^\d+$/.test(o.last))
        throw new Error(`--last ${o.last}: expected a number of flows, e.g. --last 20`);
      if (o.output !== "compact" && o.output !== "json")
        throw new Error(`-o ${o.output}: use compact or json`);
      if (o.pod !== undefined && !/^[^/\s]+\/[^/\s]+$/.test(o.pod))
        throw new Error(`--pod ${o.pod}: expected NAMESPACE/NAME, e.g. --pod default/web-0`);
      const sockets =
        o.socket ??
        (o.node
          ? o.node.map((n) => flowsSocketPath(join(labHome(), o.name, "nodes", n)))
          : nodeSockets(o.name));
      if (sockets.length === 0)
        throw new Error(
          `no node of lab "${o.name}" serves flows under ${join(labHome(), o.name, "nodes")}: is the lab up? (klab up)`,
        );

      const pods = new Map<string, PodInfo>();
      const nodeIPs = new Set<string>();
      const kubeconfig = o.kubeconfig ?? join(labHome(), o.name, "kubeconfig");
      let client: KubeClient | undefined;
      if (existsSync(kubeconfig)) {
        client = KubeClient.fromKubeconfig(kubeconfig);
        try {
          const list = await client.list<Pod>("v1", "pods");
          for (const p of list.items) {
            if (p.status?.hostIP) nodeIPs.add(p.status.hostIP);
            if (!p.status?.podIP || p.spec?.hostNetwork) continue;
            pods.set(p.status.podIP, {
              namespace: p.metadata.namespace ?? "default",
              name: p.metadata.name ?? "",
              labels: p.metadata.labels ?? {},
            });
          }
        } catch (err) {
          if (o.pod) throw new Error(`cannot look up pod ${o.pod}: ${(err as Error).message}`);
          process.stderr.write(`warning: pod names unavailable (${(err as Error).message})\n`);
        } finally {
          await client.close();
        }
      } else if (o.pod) {
        throw new Error(`--pod needs the API to find the pod's IP: pass --kubeconfig (no ${kubeconfig})`);
      }
      const req: FlowsRequest = {
        last: Number(o.last),
        follow: !!o.follow,
        verdict: verdict as Verdict | undefined,
      };
      if (o.pod) {
        const ips = [...pods].filter(([, p]) => `${p.namespace}/${p.name}` === o.pod).map(([ip]) => ip);
        if (ips.length === 0)
          throw new Error(
            `pod ${o.pod} not found or has no IP yet (kubectl get pod -n ${o.pod.replace("/", " ")} -o wide)`,
          );
        req.ips = ips;
      }
      const print = (flows: FlowEvent[]) => {
        if (o.output === "json") {
          for (const e of flows) process.stdout.write(JSON.stringify(e) + "\n");
          return;
        }
        for (const f of mergeFlows(flows)) process.stdout.write(formatFlow(f, pods, nodeIPs) + "\n");
      };
      const ac = new AbortController();
      process.once("SIGINT", () => ac.abort());
      process.once("SIGTERM", () => ac.abort());
      if (!o.follow) {
        // Merge every node's recent flows in time order.
        const all: FlowEvent[] = [];
        await Promise.all(sockets.map((s) => readFlows(s, req, (e) => all.push(e), ac.signal)));
        all.sort((a, b) => a.time - b.time);
        print(all.slice(-Number(o.last)));
        return;
      }
      // Following: hold events briefly so both nodes' views of one connection print as one line.
      let pending: FlowEvent[] = [];
      let timer: NodeJS.Timeout | undefined;
      const flush = () => {
        timer = undefined;
        const batch = pending.sort((a, b) => a.time - b.time);
        pending = [];
        print(batch);
      };
      const onFlow = (e: FlowEvent) => {
        pending.push(e);
        timer ??= setTimeout(flush, 250);
      };
      await Promise.all(sockets.map((s) => readFlows(s, req, onFlow, ac.signal)));
      if (timer) clearTimeout(timer);
      flush();
    });
}
