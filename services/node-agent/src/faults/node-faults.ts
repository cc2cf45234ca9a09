/**
 * The node faults of klab-faults that this node's agent carries out: kill-container (its
 * kubelet's container dies; the kubelet restarts it), freeze-node (the kubelet stops
 * heartbeating and reconciling), stop-kube-proxy (the node's kube-proxy process is stopped, so
 * the rules it last loaded go stale; SIGCONT when cleared) and conntrack-flush. One-shot faults
 * are removed from klab-faults once carried out, so a restarted agent does not repeat them.
 */
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { Counter, type Registry } from "prom-client";
import type { Conntrack } from "@klab/dataplane/conntrack.ts";
import type { Fault } from "@klab/dataplane/faults/model.ts";

export interface NodeFaultHost {
  nodeIP: string;
  /** The pod's container process (the group leader the shim started), if it runs here. */
  containerPid(namespace: string, name: string, container?: string): number | undefined;
  /** This node's kube-proxy container processes. */
  kubeProxyPids(): number[];
  setFrozen(frozen: boolean): void;
  conntrack(): Conntrack | undefined;
  /** Remove a one-shot fault from klab-faults once done. */
  removeFault(id: string): Promise<void>;
  signal(pid: number, signal: NodeJS.Signals): void;
}

const RECHECK_MS = 1000;

export class NodeFaults {
  private readonly done = new Set<string>();
  private readonly actions?: Counter<"fault" | "kind" | "action">;
  private stopProxy?: Fault;
  private stopped = new Set<number>();
  private frozen?: Fault;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly host: NodeFaultHost,
    private readonly log?: Logger,
    registry?: Registry,
  ) {
    if (registry)
      this.actions = new Counter({
        name: "klab_fault_actions_total",
        help: "What injected node faults did on this node (containers killed, kube-proxy stopped, heartbeats skipped, conntrack entries flushed), by fault id and kind.",
        labelNames: ["fault", "kind", "action"],
        registers: [registry],
      });
  }

  /** The whole list from klab-faults, on every change. */
  apply(faults: readonly Fault[]): void {
    const mine = faults.filter((f) => f.target.node === this.host.nodeIP || f.kind === "kill-container");
    for (const f of mine) {
      if (this.done.has(f.id)) continue;
      if (f.kind === "kill-container") this.killContainer(f);
      else if (f.kind === "conntrack-flush") this.flushConntrack(f);
    }
    const freeze = mine.find((f) => f.kind === "freeze-node");
    if (!!freeze !== !!this.frozen) {
      this.host.setFrozen(!!freeze);
      this.log?.warn({ fault: (freeze ?? this.frozen)!.id }, freeze ? "node frozen" : "node thawed");
      this.count(freeze ?? this.frozen!, freeze ? "frozen" : "thawed");
    }
    this.frozen = freeze;
    const stop = mine.find((f) => f.kind === "stop-kube-proxy");
    if (this.stopProxy && !stop) this.resumeKubeProxy(this.stopProxy);
    this.stopProxy = stop;
    if (stop) this.stopKubeProxy();
    if (stop && !this.timer) {
      // A kube-proxy restarted while the fault lasts is stopped too.
      this.timer = setInterval(() => this.stopProxy && this.stopKubeProxy(), RECHECK_MS);
      this.timer.unref();
    } else if (!stop && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    if (!stop) this.resumeLeftovers();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private killContainer(f: Fault): void {
    const [ns, name] = f.target.podName!.split("/") as [string, string];
    const pid = this.host.containerPid(ns, name, f.target.container);
    if (pid === undefined) return; // another node's pod, or not running yet
    this.done.add(f.id);
    this.host.signal(pid, "SIGKILL");
    this.log?.warn({ fault: f.id, pod: f.target.podName, pid }, "container killed by fault");
    this.count(f, "killed");
    this.finish(f);
  }

  private flushConntrack(f: Fault): void {
    const ct = this.host.conntrack();
    if (!ct) return;
    this.done.add(f.id);
    const n = ct.flush();
    this.log?.warn({ fault: f.id, entries: n }, "conntrack table flushed by fault");
    this.actions?.inc({ fault: f.id, kind: f.kind, action: "flushed" }, n);
    this.finish(f);
  }

  private finish(f: Fault): void {
    this.host
      .removeFault(f.id)
      .catch((err) => this.log?.warn({ fault: f.id, err: String(err) }, "could not remove a done fault"));
  }

  private stopKubeProxy(): void {
    for (const pid of this.host.kubeProxyPids()) {
      if (this.stopped.has(pid) && processState(pid) === "T") continue;
      this.host.signal(pid, "SIGSTOP");
      this.stopped.add(pid);
      this.log?.warn({ fault: this.stopProxy!.id, pid }, "kube-proxy stopped by fault");
      this.count(this.stopProxy!, "stopped");
    }
  }

  private resumeKubeProxy(f: Fault): void {
    for (const pid of this.host.kubeProxyPids()) {
      this.host.signal(pid, "SIGCONT");
      this.log?.info({ fault: f.id, pid }, "kube-proxy resumed");
    }
    this.count(f, "resumed");
    this.stopped.clear();
  }

  /** A kube-proxy a previous agent stopped, for a fault cleared while no agent ran. */
  private resumeLeftovers(): void {
    for (const pid of this.host.kubeProxyPids())
      if (processState(pid) === "T") {
        this.host.signal(pid, "SIGCONT");
        this.log?.info({ pid }, "kube-proxy resumed (its stop-kube-proxy fault is gone)");
      }
  }

  private count(f: Fault, action: string): void {
    this.actions?.inc({ fault: f.id, kind: f.kind, action });
  }
}

/** The state letter of /proc/PID/stat ("T" = stopped). */
export function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return undefined;
  }
}

/** The running process of a container from its pod directory (containers/NAME/ATTEMPT/{pid,exit}). */
export function runningContainerPid(podDir: string, container: string): number | undefined {
  const dir = join(podDir, "containers", container);
  let attempts: number[];
  try {
    attempts = readdirSync(dir)
      .map(Number)
      .filter((n) => Number.isInteger(n));
  } catch {
    return undefined;
  }
  if (attempts.length === 0) return undefined;
  const run = join(dir, String(Math.max(...attempts)));
  if (existsSync(join(run, "exit"))) return undefined;
  try {
    const pid = Number(readFileSync(join(run, "pid"), "utf8").trim());
    return Number.isInteger(pid) && pid > 0 && processState(pid) !== undefined ? pid : undefined;
  } catch {
    return undefined;
  }
}
