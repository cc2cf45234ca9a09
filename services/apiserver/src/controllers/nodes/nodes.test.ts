import { describe, expect, it } from "vitest";
import type { Lease, Node } from "@klab/api";
import { CidrSet } from "./cidrs.ts";
import { desiredReadinessTaints, nodeLease, staleConditions } from "./health.ts";

describe("pod CIDRs for nodes", () => {
  it("hands out /24s of 10.244.0.0/16 in order, skipping those nodes already hold", () => {
    const s = new CidrSet("10.244.0.0/16", 24);
    expect(s.occupy("10.244.1.0/24")).toBe(true);
    expect(s.occupy("10.245.0.0/24")).toBe(false);
    expect([s.allocateNext(), s.allocateNext(), s.allocateNext()]).toEqual([
      "10.244.0.0/24",
      "10.244.2.0/24",
      "10.244.3.0/24",
    ]);
    expect(s.free).toBe(252);
  });

  it("runs out after 256 nodes", () => {
    const s = new CidrSet("10.244.0.0/16", 24);
    for (let i = 0; i < 256; i++) expect(s.allocateNext()).toBeDefined();
    expect(s.allocateNext()).toBeUndefined();
    s.release("10.244.7.0/24");
    expect(s.allocateNext()).toBe("10.244.7.0/24");
  });
});

describe("node health", () => {
  const settings = { gracePeriodMs: 40_000, startupGracePeriodMs: 60_000 };
  const t0 = Date.parse("2026-01-01T00:00:00Z");
  const node: Node = {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: "node-1", creationTimestamp: "2026-01-01T00:00:00Z" },
    spec: {},
    status: {
      conditions: [
        {
          type: "Ready",
          status: "True",
          reason: "KubeletReady",
          lastHeartbeatTime: "2026-01-01T00:00:00Z",
          lastTransitionTime: "2026-01-01T00:00:00Z",
        },
        { type: "MemoryPressure", status: "False", lastHeartbeatTime: "2026-01-01T00:00:00Z" },
      ],
    },
  };

  it("stands while the Lease is renewed, even if the node status is old", () => {
    const lease: Lease = nodeLease("node-1", "uid", "2026-01-01T00:01:00.000000Z");
    expect(lease.metadata.namespace).toBe("kube-node-lease");
    expect(staleConditions(node, lease, t0 + 90_000, settings, "now")).toBeUndefined();
  });

  it("turns every kubelet condition Unknown after 40 s of silence", () => {
    const conds = staleConditions(node, undefined, t0 + 41_000, settings, "2026-01-01T00:00:41Z")!;
    const ready = conds.find((c) => c.type === "Ready")!;
    expect(ready).toMatchObject({
      status: "Unknown",
      reason: "NodeStatusUnknown",
      message: "Kubelet stopped posting node status.",
      lastHeartbeatTime: "2026-01-01T00:00:00Z",
      lastTransitionTime: "2026-01-01T00:00:41Z",
    });
    expect(conds.map((c) => c.type)).toEqual(["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"]);
  });

  it("taints an unreachable node NoSchedule and NoExecute and untaints it when Ready again", () => {
    const unknown: Node = { ...node, status: { conditions: [{ type: "Ready", status: "Unknown" }] } };
    const taints = desiredReadinessTaints(unknown, "2026-01-01T00:00:41Z");
    expect(taints).toEqual([
      { key: "node.kubernetes.io/unreachable", effect: "NoSchedule" },
      { key: "node.kubernetes.io/unreachable", effect: "NoExecute", timeAdded: "2026-01-01T00:00:41Z" },
    ]);
    const back: Node = { ...node, spec: { taints: [...taints, { key: "dedicated", effect: "NoSchedule" }] } };
    expect(desiredReadinessTaints(back, "x")).toEqual([{ key: "dedicated", effect: "NoSchedule" }]);
    const notReady: Node = { ...node, status: { conditions: [{ type: "Ready", status: "False" }] } };
    expect(desiredReadinessTaints(notReady, "t").map((t) => `${t.key}:${t.effect}`)).toEqual([
      "node.kubernetes.io/not-ready:NoSchedule",
      "node.kubernetes.io/not-ready:NoExecute",
    ]);
    const cordoned: Node = { ...node, spec: { unschedulable: true } };
    expect(desiredReadinessTaints(cordoned, "t")).toEqual([
      { key: "node.kubernetes.io/unschedulable", effect: "NoSchedule", timeAdded: "t" },
    ]);
    const uncordoned: Node = { ...node, spec: { taints: desiredReadinessTaints(cordoned, "t") } };
    expect(desiredReadinessTaints(uncordoned, "t")).toEqual([]);
  });
});
