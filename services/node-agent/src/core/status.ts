import type { Condition, ContainerStatus, Pod, PodPhase, PodStatus } from "@klab/api";

export interface PodStatusInput {
  pod: Pod;
  /** One per spec container, in spec order, as the runtime last observed them. */
  containers: ContainerStatus[];
  sandboxReady: boolean;
  podIP?: string;
  hostIP: string;
  startTime?: string;
  now: string;
}

/** kubelet getPhase (pkg/kubelet/kubelet_pods.go) for pods without init containers. */
export function podPhase(pod: Pod, containers: ContainerStatus[]): PodPhase {
  const restartPolicy = pod.spec?.restartPolicy ?? "Always";
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const c of containers) {
    if (c.state?.running) running++;
    else if (c.state?.terminated) {
      stopped++;
      if (c.state.terminated.exitCode === 0) succeeded++;
    } else if (c.state?.waiting) {
      if (c.lastState?.terminated) stopped++;
      else waiting++;
    } else waiting++;
  }
  if (waiting > 0) return "Pending";
  if (running > 0) return "Running";
  if (stopped > 0) {
    if (restartPolicy === "Always") return "Running";
    if (stopped === succeeded) return "Succeeded";
    if (restartPolicy === "OnFailure") return "Running";
    return "Failed";
  }
  return "Pending";
}

function condition(type: string, ok: boolean, now: string, reason?: string, message?: string): Condition {
  const c: Condition = { type, status: ok ? "True" : "False", lastProbeTime: null, lastTransitionTime: now };
  if (!ok && reason) c.reason = reason;
  if (!ok && message) c.message = message;
  if (ok && reason === "PodCompleted") c.reason = reason;
  return c;
}

/** Keeps lastTransitionTime when a condition did not change, as the status manager does. */
function carryTransitions(next: Condition[], prev: Condition[] | undefined): Condition[] {
  return next.map((c) => {
    const p = prev?.find((x) => x.type === c.type);
    return p && p.status === c.status && p.lastTransitionTime
      ? { ...c, lastTransitionTime: p.lastTransitionTime }
      : c;
  });
}

/** The pod status kubelet would report for what the runtime observed. */
export function computePodStatus(input: PodStatusInput): PodStatus {
  const { pod, containers, now } = input;
  const phase = podPhase(pod, containers);
  const completed = phase === "Succeeded" || phase === "Failed";
  const unready = containers.filter((c) => !c.ready).map((c) => c.name);
  const containersReady = unready.length === 0 && containers.length > 0;
  const readyMsg = `containers with unready status: [${unready.join(" ")}]`;
  const reason = completed ? "PodCompleted" : "ContainersNotReady";
  const prev = pod.status?.conditions;
  const scheduled = prev?.find((c) => c.type === "PodScheduled") ?? {
    type: "PodScheduled",
    status: "True" as const,
    lastProbeTime: null,
    lastTransitionTime: now,
  };
  const conditions = carryTransitions(
    [
      condition("PodReadyToStartContainers", input.sandboxReady && !completed, now),
      completed
        ? { ...condition("Initialized", true, now), reason: "PodCompleted" }
        : condition("Initialized", true, now),
      condition("Ready", containersReady && !completed, now, reason, completed ? undefined : readyMsg),
      condition(
        "ContainersReady",
        containersReady && !completed,
        now,
        reason,
        completed ? undefined : readyMsg,
      ),
    ],
    prev,
  );
  conditions.push(scheduled);
  const status: PodStatus = {
    phase,
    conditions,
    hostIP: input.hostIP,
    hostIPs: [{ ip: input.hostIP }],
    startTime: input.startTime,
    containerStatuses: containers,
    qosClass: pod.status?.qosClass ?? qosClass(pod),
  };
  if (input.podIP) {
    status.podIP = input.podIP;
    status.podIPs = [{ ip: input.podIP }];
  }
  return status;
}

/** v1qos.GetPodQOS in short: no requests/limits → BestEffort; limits == requests for all → Guaranteed. */
export function qosClass(pod: Pod): "Guaranteed" | "Burstable" | "BestEffort" {
  const cs = pod.spec?.containers ?? [];
  const any = cs.some(
    (c) => Object.keys(c.resources?.requests ?? {}).length || Object.keys(c.resources?.limits ?? {}).length,
  );
  if (!any) return "BestEffort";
  const guaranteed = cs.every((c) => {
    const l = c.resources?.limits ?? {};
    const r = c.resources?.requests ?? l;
    return ["cpu", "memory"].every((k) => l[k] !== undefined && String(r[k]) === String(l[k]));
  });
  return guaranteed ? "Guaranteed" : "Burstable";
}
