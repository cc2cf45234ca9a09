import { mkdirSync, readFileSync, rmSync, writeFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import type { Container, ContainerStatus, Pod, PodStatus } from "@klab/api";
import { Backoff, crashLoopMessage } from "../core/backoff.ts";
import { computePodStatus } from "../core/status.ts";
import { buildContainerEnv, expandArgs, EnvError } from "../core/env.ts";
import { resolveImage } from "../images/catalog.ts";
import {
  containerAlive,
  containerDir,
  newContainerID,
  readExit,
  startContainer,
  stopContainer,
  terminatedReason,
  type ContainerRun,
} from "./containers.ts";
import { ProbeState, runProbe } from "./probes.ts";
import { graceAfterHook, PRE_STOP_FAILED, runPreStop } from "./lifecycle.ts";
import { enterPodArgs, sandboxAlive, type SandboxHandle } from "../sandbox/sandbox.ts";
import type { NodeRuntime } from "./node-runtime.ts";
import { StartTrace } from "./start-trace.ts";
import { killPodProcesses } from "./reap.ts";

/** What survives an agent restart for one container. */
interface ContainerRecord {
  attempt: number;
  run?: ContainerRun;
  exit?: { exitCode: number; finishedAt: string; reason: string };
  last?: { exitCode: number; reason: string; startedAt: string; finishedAt: string; containerID: string };
  env?: Record<string, string>;
  image?: string;
  imageID?: string;
}

/** What survives an agent restart for one pod (state.json in its directory). */
export interface PodRecord {
  uid: string;
  namespace: string;
  name: string;
  startTime: string;
  podIP?: string;
  netns?: string;
  sandbox?: SandboxHandle;
  containers: Record<string, ContainerRecord>;
}

interface Live {
  waiting?: { reason: string; message?: string };
  ready: boolean;
  started: boolean;
  probes: Array<{ stop(): void }>;
  readiness?: ProbeState;
  startup?: ProbeState;
  liveness?: ProbeState;
}

/** how often ConfigMap/Secret/token contents are re-read (kubelet: its sync period plus cache TTL) */
const VOLUME_SYNC_MS = 10_000;

const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

/** Whether a's resourceVersion is older than b's (when both are the API server's numbers). */
function olderThan(a: Pod, b: Pod): boolean {
  const x = a.metadata.resourceVersion;
  const y = b.metadata.resourceVersion;
  if (!x || !y || !/^\d+$/.test(x) || !/^\d+$/.test(y)) return false;
  return BigInt(x) < BigInt(y);
}

/**
 * The grace period a deletion gives the pod's containers: the API's deletionGracePeriodSeconds,
 * or, for a pod the API removed without one (a forced delete with --grace-period=0), none at all.
 */
export function terminationGracePeriod(pod: Pod, removed: boolean): number {
  const g = pod.metadata.deletionGracePeriodSeconds;
  if (typeof g === "number" && Number.isFinite(g)) return Math.max(0, g);
  if (removed) return 0;
  return pod.spec?.terminationGracePeriodSeconds ?? 30;
}

/** kubelet's per-pod worker: makes the runtime match the pod spec and reports status. */
export class PodWorker {
  readonly dir: string;
  private volumesSyncedAt = Date.now();
  private record: PodRecord;
  private live = new Map<string, Live>();
  private backoff = new Backoff();
  private imageBackoff = new Backoff();
  private queue: Promise<void> = Promise.resolve();
  private pending = false;
  private timer?: NodeJS.Timeout;
  private lastStatus = "";
  private reporting?: Promise<void>;
  private reportAgain = false;
  /** set as soon as a deletion is seen, so a sync in flight starts nothing more */
  private terminating = false;
  private termination?: Promise<void>;
  /** a later, shorter deletion (a forced one during a graceful one): SIGKILL by then */
  private killBy = Infinity;
  private stopped = false;
  private sandboxError?: string;
  private exitPendingSince: Record<string, number> = {};
  private networkAttached = false;
  /** until the pod first reports Ready; none for a pod adopted after an agent restart */
  private trace?: StartTrace;

  constructor(
    private pod: Pod,
    private readonly rt: NodeRuntime,
    adopted?: PodRecord,
  ) {
    const uid = pod.metadata.uid!;
    this.dir = join(rt.config.stateDir, "pods", uid);
    this.record = adopted ?? {
      uid,
      namespace: pod.metadata.namespace ?? "default",
      name: pod.metadata.name!,
      startTime: now(),
      containers: {},
    };
    mkdirSync(this.dir, { recursive: true });
    if (adopted) this.adoptRunning();
    else this.trace = new StartTrace();
  }

  get key(): string {
    return `${this.record.namespace}/${this.record.name}`;
  }
  get uid(): string {
    return this.record.uid;
  }
  get podIP(): string | undefined {
    return this.record.podIP;
  }
  get currentPod(): Pod {
    return this.pod;
  }

  update(pod: Pod): void {
    this.pod = pod;
    this.kick();
  }

  /** Schedules a sync; syncs never overlap and a burst of kicks folds into one. */
  kick(): void {
    if (this.stopped || this.pending) return;
    this.pending = true;
    this.queue = this.queue.then(async () => {
      this.pending = false;
      try {
        await this.sync();
      } catch (err) {
        this.rt.log.error({ pod: this.key, err: String(err) }, "pod sync failed");
      }
    });
  }

  private persist(): void {
    const tmp = join(this.dir, "state.json.tmp");
    writeFileSync(tmp, JSON.stringify(this.record));
    renameSync(tmp, join(this.dir, "state.json"));
  }

  static loadRecord(dir: string): PodRecord | undefined {
    try {
      return JSON.parse(readFileSync(join(dir, "state.json"), "utf8")) as PodRecord;
    } catch {
      return undefined;
    }
  }

  private liveOf(name: string): Live {
    let l = this.live.get(name);
    if (!l) {
      l = { ready: false, started: false, probes: [] };
      this.live.set(name, l);
    }
    return l;
  }

  /** After an agent restart: containers still running keep running and get their probes back. */
  private adoptRunning(): void {
    for (const c of this.pod.spec?.containers ?? []) {
      const rec = this.record.containers[c.name];
      if (rec?.run && !rec.exit && containerAlive(rec.run)) {
        this.startProbes(c, rec);
        this.rt.log.info({ pod: this.key, container: c.name, pid: rec.run.pid }, "adopted running container");
      }
    }
  }

  private scheduleIn(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.kick(), Math.max(ms, 50));
    this.timer.unref();
  }

  private async sync(): Promise<void> {
    if (this.stopped || this.terminating) return;
    if (this.pod.metadata.deletionTimestamp) {
      // queued behind this sync, which ends here
      void this.terminate();
      return;
    }
    this.trace?.mark("queued");
    let next = 2000;
    if (
      this.record.sandbox &&
      sandboxAlive(this.record.sandbox) &&
      !this.networkAttached &&
      !this.pod.spec?.hostNetwork
    ) {
      try {
        await this.rt.reattach(this.record);
        this.networkAttached = true;
      } catch (err) {
        this.rt.log.warn({ pod: this.key, err: String(err) }, "re-attaching the pod network failed");
      }
      if (this.terminating) return;
    }
    if (!this.record.sandbox || !sandboxAlive(this.record.sandbox)) {
      try {
        await this.rt.createSandbox(this.pod, this.record, this.trace);
        this.networkAttached = true;
        this.sandboxError = undefined;
        this.persist();
        // the teardown queued behind this sync removes what was just made
        if (this.terminating) return;
      } catch (err) {
        this.sandboxError = String((err as Error).message ?? err);
        this.rt.log.error({ pod: this.key, err: this.sandboxError }, "pod sandbox failed");
        this.rt.event(
          this.pod,
          "Warning",
          "FailedCreatePodSandBox",
          `Failed to create pod sandbox: ${this.sandboxError}`,
        );
        this.report();
        this.scheduleIn(5000);
        return;
      }
    }
    if (Date.now() - this.volumesSyncedAt >= VOLUME_SYNC_MS) {
      this.volumesSyncedAt = Date.now();
      try {
        await this.rt.refreshVolumes(this.pod);
      } catch (err) {
        this.rt.log.warn({ pod: this.key, err: String((err as Error).message ?? err) }, "volume sync failed");
      }
      if (this.terminating) return;
    }
    const restartPolicy = this.pod.spec?.restartPolicy ?? "Always";
    for (const c of this.pod.spec?.containers ?? []) {
      if (this.terminating) return;
      const rec = (this.record.containers[c.name] ??= { attempt: 0 });
      const live = this.liveOf(c.name);
      if (rec.run && !rec.exit) {
        const exit = readExit(rec.run.dir);
        if (!exit && containerAlive(rec.run)) continue;
        if (!exit) {
          // the process is gone and its shim is about to record how it ended
          const since = (this.exitPendingSince[c.name] ??= Date.now());
          if (Date.now() - since < 5000) {
            next = Math.min(next, 100);
            continue;
          }
        }
        delete this.exitPendingSince[c.name];
        if (!exit) await stopContainer(rec.run, 0);
        if (this.terminating) return;
        const e = exit ?? readExit(rec.run.dir) ?? { exitCode: 137, finishedAt: now() };
        rec.exit = { ...e, reason: terminatedReason(e.exitCode) };
        this.stopProbes(live);
        this.persist();
      }
      const ranBefore = !!rec.run;
      if (ranBefore) {
        const code = rec.exit!.exitCode;
        const restart = restartPolicy === "Always" || (restartPolicy === "OnFailure" && code !== 0);
        if (!restart) continue;
        const finished = Date.parse(rec.exit!.finishedAt);
        const t = Date.now();
        if (this.backoff.isInBackOffSince(c.name, finished, t)) {
          const wait = this.backoff.get(c.name);
          if (live.waiting?.reason !== "CrashLoopBackOff")
            this.rt.event(
              this.pod,
              "Warning",
              "BackOff",
              `Back-off restarting failed container ${c.name} in pod ${this.record.name}_${this.record.namespace}(${this.uid})`,
            );
          live.waiting = {
            reason: "CrashLoopBackOff",
            message: crashLoopMessage(wait, c.name, this.record.name, this.record.namespace, this.uid),
          };
          next = Math.min(next, finished + wait - t + 10);
          continue;
        }
        this.backoff.next(c.name, t);
      }
      await this.startOne(c, rec, live);
    }
    this.report();
    this.scheduleIn(next);
  }

  private async startOne(c: Container, rec: ContainerRecord, live: Live): Promise<void> {
    const image = resolveImage(c);
    if (!image.ok) {
      const t = Date.now();
      const key = `image:${c.name}`;
      if (this.imageBackoff.isInBackOffSince(key, t - 1, t)) {
        live.waiting = { reason: "ImagePullBackOff", message: `Back-off pulling image "${c.image}"` };
      } else {
        this.imageBackoff.next(key, t);
        live.waiting = { reason: image.reason, message: image.message };
        this.rt.event(this.pod, "Warning", "Failed", image.message);
        this.rt.event(this.pod, "Warning", "Failed", `Error: ${image.reason}`);
        // show ErrImagePull first, then ImagePullBackOff once the back-off window is running
        setTimeout(() => this.kick(), 1000).unref();
      }
      return;
    }
    let env: Array<[string, string]>;
    try {
      const sources = await this.rt.envSources(this.pod);
      if (this.terminating) return;
      env = buildContainerEnv(this.pod, c, sources, {
        podIP: this.record.podIP,
        hostIP: this.rt.config.nodeIP,
        nodeName: this.rt.config.nodeName,
      });
    } catch (err) {
      const reason = err instanceof EnvError ? err.reason : "CreateContainerConfigError";
      live.waiting = { reason, message: (err as Error).message };
      this.rt.event(this.pod, "Warning", "Failed", `Error: ${(err as Error).message}`);
      return;
    }
    const baseEnv: Record<string, string> = {
      PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      HOSTNAME: this.pod.spec?.hostNetwork ? this.rt.config.nodeName : this.rt.hostnameOf(this.pod),
      HOME: "/root",
      ...(image.spec.env ?? {}),
    };
    const containerEnv = { ...baseEnv, ...Object.fromEntries(env) };
    const argv = expandArgs(image.argv, env)!;
    const attempt = rec.run ? rec.attempt + 1 : rec.attempt;
    if (rec.run && rec.exit) {
      rec.last = {
        exitCode: rec.exit.exitCode,
        reason: rec.exit.reason,
        startedAt: rec.run.startedAt,
        finishedAt: rec.exit.finishedAt,
        containerID: rec.run.containerID,
      };
    }
    const dir = containerDir(this.dir, c.name, attempt);
    rmSync(dir, { recursive: true, force: true });
    const enter = enterPodArgs(this.record.sandbox!, !!this.pod.spec?.hostNetwork, c.workingDir);
    const containerID = newContainerID(this.uid, c.name, attempt);
    try {
      const { run } = await startContainer(dir, [...enter, ...argv], containerEnv, () => this.kick());
      rec.run = { ...run, containerID };
      rec.exit = undefined;
      rec.attempt = attempt;
      rec.env = containerEnv;
      rec.image = image.ref.normalized;
      rec.imageID = image.imageID;
      this.trace?.mark("spawn");
      live.waiting = undefined;
      live.started = !c.startupProbe;
      live.ready = false;
      this.persist();
      if (attempt === 0)
        this.rt.event(
          this.pod,
          "Normal",
          "Pulled",
          `Container image "${c.image}" already present on machine`,
        );
      this.rt.event(this.pod, "Normal", "Created", `Created container: ${c.name}`);
      this.rt.event(this.pod, "Normal", "Started", `Started container ${c.name}`);
      this.startProbes(c, rec);
    } catch (err) {
      live.waiting = { reason: "RunContainerError", message: String((err as Error).message) };
    }
  }

  private startProbes(c: Container, rec: ContainerRecord): void {
    const live = this.liveOf(c.name);
    this.stopProbes(live);
    live.started = !c.startupProbe;
    live.ready = !c.readinessProbe && live.started;
    const target = () => ({
      podIP: this.record.podIP,
      enter: enterPodArgs(this.record.sandbox!, !!this.pod.spec?.hostNetwork),
      env: rec.env ?? { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      container: c,
      dialFromNode: this.dialsPods,
    });
    const loop = (kind: "startup" | "readiness" | "liveness", probe = c[`${kind}Probe`]) => {
      if (!probe) return;
      const state = new ProbeState(probe, kind === "liveness");
      live[kind] = state;
      let timer: NodeJS.Timeout | undefined;
      let stopped = false;
      const tick = async () => {
        if (stopped) return;
        if (kind !== "startup" && !live.started) {
          timer = setTimeout(tick, 1000);
          return;
        }
        if (kind === "startup" && live.started) return;
        const r = await runProbe(probe, target());
        if (stopped) return;
        const before = state.result;
        const after = state.record(r.ok);
        if (!r.ok) {
          const label = kind[0].toUpperCase() + kind.slice(1);
          this.rt.event(this.pod, "Warning", "Unhealthy", `${label} probe failed: ${r.output}`.trim());
        }
        if (kind === "readiness" && before !== after) {
          if (after) this.trace?.mark("readiness");
          live.ready = after;
          this.kick();
        }
        if (kind === "startup" && after && !live.started) {
          live.started = true;
          live.ready = !c.readinessProbe;
          this.kick();
        }
        if (kind === "startup" && !r.ok && state.failures >= (probe.failureThreshold ?? 3)) {
          this.rt.event(
            this.pod,
            "Normal",
            "Killing",
            `Container ${c.name} failed startup probe, will be restarted`,
          );
          await this.killForRestart(rec, probe.terminationGracePeriodSeconds);
          return;
        }
        if (kind === "liveness" && !after) {
          this.rt.event(
            this.pod,
            "Normal",
            "Killing",
            `Container ${c.name} failed liveness probe, will be restarted`,
          );
          await this.killForRestart(rec, probe.terminationGracePeriodSeconds);
          return;
        }
        timer = setTimeout(tick, (probe.periodSeconds ?? 10) * 1000);
      };
      timer = setTimeout(tick, (probe.initialDelaySeconds ?? 0) * 1000);
      live.probes.push({
        stop: () => {
          stopped = true;
          if (timer) clearTimeout(timer);
        },
      });
    };
    loop("startup");
    loop("readiness");
    loop("liveness");
  }

  /** The agent runs in the namespace holding the node's pod routes, so it reaches the pod's IP. */
  private get dialsPods(): boolean {
    return this.rt.config.network.nodeNetns === undefined && !!this.record.podIP;
  }

  private stopProbes(live: Live): void {
    for (const p of live.probes) p.stop();
    live.probes = [];
    live.ready = false;
  }

  private async killForRestart(rec: ContainerRecord, probeGrace?: number): Promise<void> {
    if (!rec.run) return;
    const grace = probeGrace ?? this.pod.spec?.terminationGracePeriodSeconds ?? 30;
    await this.killContainer(rec, grace);
    this.kick();
  }

  /** kubelet's killContainer: the preStop hook spends part of the grace period, the stop signal gets the rest. */
  private async killContainer(rec: ContainerRecord, graceSeconds: number): Promise<void> {
    const run = rec.run!;
    const c = this.pod.spec?.containers?.find((x) => rec === this.record.containers[x.name]);
    const preStop = c?.lifecycle?.preStop;
    let grace = graceSeconds;
    if (c && preStop && grace > 0 && this.record.sandbox && containerAlive(run)) {
      const podRef = `${this.record.name}_${this.record.namespace}(${this.uid})`;
      const hook = await runPreStop(
        preStop,
        {
          podIP: this.record.podIP,
          enter: enterPodArgs(this.record.sandbox, !!this.pod.spec?.hostNetwork),
          env: rec.env ?? { PATH: process.env.PATH ?? "/usr/bin:/bin" },
          container: c,
          dialFromNode: this.dialsPods,
        },
        podRef,
        grace,
      );
      if (hook.failure) {
        this.rt.log.warn({ pod: this.key, container: c.name, err: hook.failure }, "PreStop hook failed");
        this.rt.event(this.pod, "Warning", "FailedPreStopHook", PRE_STOP_FAILED);
      } else if (hook.timedOut)
        this.rt.log.info({ pod: this.key, container: c.name }, "PreStop hook not completed in grace period");
      grace = graceAfterHook(grace, hook.elapsedSeconds);
    }
    await stopContainer(run, grace, () => this.killBy);
  }

  private containerStatuses(): ContainerStatus[] {
    return (this.pod.spec?.containers ?? []).map((c) => {
      const rec = this.record.containers[c.name];
      const live = this.liveOf(c.name);
      const image = resolveImage(c);
      const cs: ContainerStatus = {
        name: c.name,
        state: {},
        lastState: {},
        ready: false,
        restartCount: rec?.attempt ?? 0,
        image: rec?.image ?? (image.ok ? image.ref.normalized : (c.image ?? "")),
        imageID: rec?.imageID ?? "",
        started: false,
      };
      if (rec?.last)
        cs.lastState = { terminated: { ...rec.last, containerID: `klab://${rec.last.containerID}` } };
      if (rec?.run && !rec.exit && !live.waiting) {
        cs.state = { running: { startedAt: rec.run.startedAt } };
        cs.containerID = `klab://${rec.run.containerID}`;
        cs.ready = live.ready;
        cs.started = live.started;
      } else if (live.waiting) {
        cs.state = { waiting: { ...live.waiting } };
        if (rec?.run && rec.exit) {
          cs.lastState = {
            terminated: {
              exitCode: rec.exit.exitCode,
              reason: rec.exit.reason,
              startedAt: rec.run.startedAt,
              finishedAt: rec.exit.finishedAt,
              containerID: `klab://${rec.run.containerID}`,
            },
          };
          cs.containerID = `klab://${rec.run.containerID}`;
        }
      } else if (rec?.run && rec.exit) {
        cs.state = {
          terminated: {
            exitCode: rec.exit.exitCode,
            reason: rec.exit.reason,
            startedAt: rec.run.startedAt,
            finishedAt: rec.exit.finishedAt,
            containerID: `klab://${rec.run.containerID}`,
          },
        };
        cs.containerID = `klab://${rec.run.containerID}`;
      } else {
        cs.state = { waiting: { reason: "ContainerCreating" } };
      }
      if (!cs.imageID) delete (cs as Partial<ContainerStatus>).containerID;
      return cs;
    });
  }

  computeStatus(): PodStatus {
    return computePodStatus({
      pod: this.pod,
      containers: this.containerStatuses(),
      sandboxReady: !!this.record.sandbox && sandboxAlive(this.record.sandbox),
      podIP: this.record.podIP,
      hostIP: this.rt.config.nodeIP,
      startTime: this.record.startTime,
      now: now(),
    });
  }

  /**
   * Sends the pod's status if it changed, without holding up the sync: while a write is in flight,
   * further changes fold into one write of the latest status when it returns (kubelet's status
   * manager also writes only the newest status it has).
   */
  private report(): void {
    if (this.reporting) {
      this.reportAgain = true;
      return;
    }
    const status = this.computeStatus();
    const text = JSON.stringify({
      ...status,
      conditions: status.conditions?.map((c) => ({ ...c, lastTransitionTime: undefined })),
    });
    if (text === this.lastStatus) return;
    this.reporting = (async () => {
      try {
        const updated = await this.rt.updateStatus(this.pod, status);
        // an informer update that arrived meanwhile (a deletion, say) is newer: keep it
        if (updated && !olderThan(updated, this.pod)) this.pod = updated;
        this.lastStatus = text;
        if (this.trace && status.conditions?.some((c) => c.type === "Ready" && c.status === "True")) {
          this.trace.mark("status");
          const t = this.trace.finish();
          this.trace = undefined;
          if (t) this.rt.log.info({ pod: this.key, ...t }, "pod start phases");
        }
      } catch (err) {
        this.rt.log.warn({ pod: this.key, err: String(err) }, "status update failed");
        this.scheduleIn(1000);
      } finally {
        this.reporting = undefined;
        if (this.reportAgain && !this.stopped) {
          this.reportAgain = false;
          this.report();
        }
      }
    })();
  }

  /** For exec and probes: how to enter a running container and its environment. */
  containerEntry(name: string): { enter: string[]; env: Record<string, string> } | undefined {
    const rec = this.record.containers[name];
    if (!rec?.run || rec.exit || !this.record.sandbox || !containerAlive(rec.run)) return undefined;
    return { enter: enterPodArgs(this.record.sandbox, !!this.pod.spec?.hostNetwork), env: rec.env ?? {} };
  }

  logFile(name: string, previous: boolean): string | undefined {
    const rec = this.record.containers[name];
    if (!rec?.run) return undefined;
    const attempt = previous ? rec.attempt - 1 : rec.attempt;
    if (attempt < 0) return undefined;
    return join(containerDir(this.dir, name, attempt), "log");
  }

  /** nsenter prefix into the pod's network namespace ([] for hostNetwork pods), if it has one. */
  netEnter(): string[] | undefined {
    if (this.pod.spec?.hostNetwork) return [];
    if (!this.record.netns || !this.record.sandbox || !sandboxAlive(this.record.sandbox)) return undefined;
    return ["nsenter", `--net=/run/netns/${this.record.netns}`, "--"];
  }

  waitingReason(name: string): string | undefined {
    return this.live.get(name)?.waiting?.reason;
  }

  containerRunning(name: string): boolean {
    return !!this.containerEntry(name);
  }

  /**
   * The pod is being deleted (`deleted`: the object as the API last had it, for a pod already gone
   * from it). Kubelet's pod worker: the sync in flight starts nothing more, then, in the worker's
   * queue so nothing runs beside it, graceful termination, sandbox teardown and the final delete.
   * A second, shorter deletion (a forced one during a graceful one) shortens the wait for SIGKILL.
   */
  terminate(deleted?: Pod): Promise<void> {
    const grace = terminationGracePeriod(deleted ?? this.pod, !!deleted);
    if (this.termination) {
      this.killBy = Math.min(this.killBy, Date.now() + grace * 1000);
      return this.termination;
    }
    this.terminating = true;
    if (deleted) this.pod = deleted;
    for (const l of this.live.values()) this.stopProbes(l);
    const done = this.queue
      .then(() => this.teardown(grace))
      .catch((err) => this.rt.log.error({ pod: this.key, err: String(err) }, "pod termination failed"));
    this.queue = done;
    this.termination = done;
    return done;
  }

  private async teardown(grace: number): Promise<void> {
    for (const l of this.live.values()) this.stopProbes(l);
    await Promise.all(
      Object.entries(this.record.containers).map(async ([name, rec]) => {
        if (rec.run && !rec.exit && containerAlive(rec.run)) {
          this.rt.event(this.pod, "Normal", "Killing", `Stopping container ${name}`);
          await this.killContainer(rec, grace);
        }
      }),
    );
    // like the end of the pod's pid namespace: exec sessions and whatever left a container's
    // process group go with the pod, before its network namespace does
    const left = await killPodProcesses(join(this.dir, "root"));
    if (left.length) this.rt.log.warn({ pod: this.key, pids: left }, "pod processes survived SIGKILL");
    await this.rt.destroySandbox(this.record);
    this.stop();
    await this.reporting;
    rmSync(this.dir, { recursive: true, force: true });
    await this.rt.finalDelete(this.pod);
  }

  /** Stops timers and probes without touching processes (agent shutdown). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const l of this.live.values()) for (const p of l.probes) p.stop();
  }

  get sandboxFailure(): string | undefined {
    return this.sandboxError;
  }
}
