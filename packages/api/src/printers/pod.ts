// The READY, STATUS and RESTARTS cells of `kubectl get pods`, computed as kube-apiserver's printPod does.
import type { Container, ContainerStatus, Pod } from "../types.ts";
import { translateTimestampSince } from "./duration.ts";

export interface PodSummary {
  ready: string;
  status: string;
  restarts: string;
  conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
}

/** A sidecar: an init container with restartPolicy Always keeps running beside the others. */
function isRestartableInit(c: Container | undefined): boolean {
  return c?.restartPolicy === "Always";
}

function laterTime(a: string | undefined, b: string | undefined): string | undefined {
  if (!b) return a;
  if (!a) return b;
  return Date.parse(b) > Date.parse(a) ? b : a;
}

function lastTerminated(cs: ContainerStatus): string | undefined {
  return cs.lastState?.terminated?.finishedAt;
}

export function summarizePod(pod: Pod, now: Date): PodSummary {
  const spec = pod.spec ?? { containers: [] };
  const status = pod.status ?? {};
  let restarts = 0;
  let sidecarRestarts = 0;
  let totalContainers = (spec.containers ?? []).length;
  let readyContainers = 0;
  let lastRestart: string | undefined;
  let lastSidecarRestart: string | undefined;
  const phase = status.phase ?? "";
  let reason: string = phase;
  if (status.reason) reason = status.reason;
  for (const c of status.conditions ?? [])
    if (c.type === "PodScheduled" && c.reason === "SchedulingGated") reason = "SchedulingGated";

  const inits = new Map<string, Container>();
  for (const c of spec.initContainers ?? []) {
    inits.set(c.name, c);
    if (isRestartableInit(c)) totalContainers++;
  }

  let initializing = false;
  const initStatuses = status.initContainerStatuses ?? [];
  for (let i = 0; i < initStatuses.length; i++) {
    const cs = initStatuses[i];
    restarts += cs.restartCount ?? 0;
    lastRestart = laterTime(lastRestart, lastTerminated(cs));
    const sidecar = isRestartableInit(inits.get(cs.name));
    if (sidecar) {
      sidecarRestarts += cs.restartCount ?? 0;
      lastSidecarRestart = laterTime(lastSidecarRestart, lastTerminated(cs));
    }
    const term = cs.state?.terminated;
    const waiting = cs.state?.waiting;
    if (term && term.exitCode === 0) continue;
    if (sidecar && cs.started) {
      if (cs.ready) readyContainers++;
      continue;
    }
    if (term) {
      if (!term.reason)
        reason = term.signal ? `Init:Signal:${term.signal}` : `Init:ExitCode:${term.exitCode}`;
      else reason = `Init:${term.reason}`;
    } else if (waiting && waiting.reason && waiting.reason !== "PodInitializing") {
      reason = `Init:${waiting.reason}`;
    } else {
      reason = `Init:${i}/${(spec.initContainers ?? []).length}`;
    }
    initializing = true;
    break;
  }

  const initializedTrue = (status.conditions ?? []).some(
    (c) => c.type === "Initialized" && c.status === "True",
  );
  if (!initializing || initializedTrue) {
    restarts = sidecarRestarts;
    lastRestart = lastSidecarRestart;
    let hasRunning = false;
    const statuses = status.containerStatuses ?? [];
    for (let i = statuses.length - 1; i >= 0; i--) {
      const cs = statuses[i];
      restarts += cs.restartCount ?? 0;
      lastRestart = laterTime(lastRestart, lastTerminated(cs));
      const st = cs.state ?? {};
      if (st.waiting && st.waiting.reason) reason = st.waiting.reason;
      else if (st.terminated && st.terminated.reason) reason = st.terminated.reason;
      else if (st.terminated && !st.terminated.reason)
        reason = st.terminated.signal
          ? `Signal:${st.terminated.signal}`
          : `ExitCode:${st.terminated.exitCode}`;
      else if (cs.ready && st.running) {
        hasRunning = true;
        readyContainers++;
      }
    }
    // a completed container beside a running one does not make the pod Completed
    if (reason === "Completed" && hasRunning) {
      const ready = (status.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
      reason = ready ? "Running" : "NotReady";
    }
  }

  const terminal = phase === "Succeeded" || phase === "Failed";
  if (pod.metadata.deletionTimestamp && status.reason === "NodeLost") reason = "Unknown";
  else if (pod.metadata.deletionTimestamp && !terminal) reason = "Terminating";

  let restartsStr = String(restarts);
  if (restarts !== 0 && lastRestart)
    restartsStr = `${restarts} (${translateTimestampSince(lastRestart, now)} ago)`;

  const summary: PodSummary = {
    ready: `${readyContainers}/${totalContainers}`,
    status: reason,
    restarts: restartsStr,
  };
  if (phase === "Succeeded")
    summary.conditions = [
      {
        type: "Completed",
        status: "True",
        reason: "Succeeded",
        message: "The pod has completed successfully.",
      },
    ];
  else if (phase === "Failed")
    summary.conditions = [
      { type: "Completed", status: "True", reason: "Failed", message: "The pod failed." },
    ];
  return summary;
}
