import { describe, expect, it } from "vitest";
import type { ContainerStatus, Pod } from "@klab/api";
import { computePodStatus, podPhase } from "./status.ts";

const pod = (restartPolicy: "Always" | "OnFailure" | "Never" = "Always"): Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "p", namespace: "default", uid: "u" },
  spec: { containers: [{ name: "a" }, { name: "b" }], restartPolicy },
  status: {
    conditions: [
      {
        type: "PodScheduled",
        status: "True",
        lastTransitionTime: "2026-01-01T00:00:00Z",
        lastProbeTime: null,
      },
    ],
  },
});
const cs = (
  name: string,
  state: ContainerStatus["state"],
  ready = false,
  lastState: ContainerStatus["lastState"] = {},
): ContainerStatus => ({
  name,
  state,
  lastState,
  ready,
  restartCount: 0,
  image: "x",
  imageID: "y",
  started: !!state?.running,
});
const running = { running: { startedAt: "t" } };
const term = (exitCode: number) => ({ terminated: { exitCode, reason: exitCode ? "Error" : "Completed" } });

describe("pod phase as kubelet computes it", () => {
  it("is Pending while a container was never started", () => {
    expect(podPhase(pod(), [cs("a", running), cs("b", { waiting: { reason: "ContainerCreating" } })])).toBe(
      "Pending",
    );
  });
  it("is Running when a container in back-off has run before", () => {
    expect(
      podPhase(pod(), [
        cs("a", running),
        cs("b", { waiting: { reason: "CrashLoopBackOff" } }, false, term(1)),
      ]),
    ).toBe("Running");
  });
  it("is Succeeded/Failed for finished pods that do not restart", () => {
    expect(podPhase(pod("Never"), [cs("a", term(0)), cs("b", term(0))])).toBe("Succeeded");
    expect(podPhase(pod("Never"), [cs("a", term(0)), cs("b", term(2))])).toBe("Failed");
    expect(podPhase(pod("OnFailure"), [cs("a", term(0)), cs("b", term(2))])).toBe("Running");
    expect(podPhase(pod("Always"), [cs("a", term(0)), cs("b", term(0))])).toBe("Running");
  });
});

describe("pod status", () => {
  const now = "2026-11-26T16:00:00Z";
  it("reports Ready with kubelet's conditions in kubelet's order, IPs and start time", () => {
    const s = computePodStatus({
      pod: pod(),
      containers: [cs("a", running, true), cs("b", running, true)],
      sandboxReady: true,
      podIP: "10.244.1.2",
      hostIP: "172.29.0.3",
      startTime: now,
      now,
    });
    expect(s.phase).toBe("Running");
    expect(s.conditions?.map((c) => `${c.type}=${c.status}`)).toEqual([
      "PodReadyToStartContainers=True",
      "Initialized=True",
      "Ready=True",
      "ContainersReady=True",
      "PodScheduled=True",
    ]);
    expect(s.podIPs).toEqual([{ ip: "10.244.1.2" }]);
    expect(s.hostIP).toBe("172.29.0.3");
    expect(s.qosClass).toBe("BestEffort");
  });
  it("names the unready containers", () => {
    const s = computePodStatus({
      pod: pod(),
      containers: [cs("a", running, true), cs("b", running, false)],
      sandboxReady: true,
      podIP: "10.244.1.2",
      hostIP: "h",
      now,
    });
    const ready = s.conditions?.find((c) => c.type === "Ready");
    expect(ready).toMatchObject({
      status: "False",
      reason: "ContainersNotReady",
      message: "containers with unready status: [b]",
    });
  });
  it("keeps lastTransitionTime of unchanged conditions", () => {
    const p = pod();
    p.status!.conditions!.push({
      type: "Initialized",
      status: "True",
      lastTransitionTime: "2026-01-01T00:00:01Z",
    });
    const s = computePodStatus({
      pod: p,
      containers: [cs("a", running), cs("b", running)],
      sandboxReady: true,
      hostIP: "h",
      now,
    });
    expect(s.conditions?.find((c) => c.type === "Initialized")?.lastTransitionTime).toBe(
      "2026-01-01T00:00:01Z",
    );
    expect(s.conditions?.find((c) => c.type === "Ready")?.lastTransitionTime).toBe(now);
  });
  it("marks completed pods PodCompleted", () => {
    const s = computePodStatus({
      pod: pod("Never"),
      containers: [cs("a", term(0)), cs("b", term(0))],
      sandboxReady: false,
      hostIP: "h",
      now,
    });
    expect(s.phase).toBe("Succeeded");
    expect(s.conditions?.find((c) => c.type === "Ready")).toMatchObject({
      status: "False",
      reason: "PodCompleted",
    });
  });
});
