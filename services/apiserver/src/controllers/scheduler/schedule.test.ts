import { describe, expect, it } from "vitest";
import type { Node, Pod } from "@klab/api";
import { ERR_NO_NODES, fitErrorMessage, schedule, tolerates } from "./schedule.ts";

function node(name: string, extra: Partial<Node["spec"]> = {}, labels: Record<string, string> = {}): Node {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name, labels: { "kubernetes.io/hostname": name, ...labels } },
    spec: { ...extra },
  };
}

function pod(name: string, spec: Partial<NonNullable<Pod["spec"]>> = {}, owner = "rs-1"): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: "default",
      ownerReferences: [
        { apiVersion: "apps/v1", kind: "ReplicaSet", name: "web", uid: owner, controller: true },
      ],
    },
    spec: { containers: [{ name: "c", image: "nginx" }], ...spec },
  };
}

const nodes = [node("node-1"), node("node-2"), node("node-3")];

describe("schedule", () => {
  it("says there are no nodes when there are none", () => {
    expect(schedule(pod("a"), [], new Map())).toEqual({ reasons: ERR_NO_NODES });
  });

  it("puts the pods of one ReplicaSet on different nodes first", () => {
    const placed = new Map<string, Pod[]>();
    const chosen: string[] = [];
    for (let i = 0; i < 3; i++) {
      const p = pod(`web-${i}`);
      const r = schedule(p, nodes, placed);
      if (!("node" in r)) throw new Error(r.reasons);
      chosen.push(r.node);
      placed.set(r.node, [...(placed.get(r.node) ?? []), p]);
    }
    expect(new Set(chosen).size).toBe(3);
  });

  it("words a nodeSelector mismatch as kube-scheduler does", () => {
    const r = schedule(pod("a", { nodeSelector: { disk: "ssd" } }), nodes, new Map());
    expect(r).toEqual({
      reasons:
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
    });
  });

  it("counts each reason and sorts them", () => {
    const ns = [
      node("a", { unschedulable: true }),
      node("b", { taints: [{ key: "node.kubernetes.io/not-ready", effect: "NoSchedule" }] }),
      node("c", {}, { disk: "hdd" }),
    ];
    const r = schedule(pod("p", { nodeSelector: { disk: "ssd" } }), ns, new Map());
    expect("reasons" in r && r.reasons).toBe(
      "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 1 node(s) were unschedulable. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
    );
  });

  it("honours tolerations, required node affinity and ignores PreferNoSchedule for feasibility", () => {
    const tainted = node("t", { taints: [{ key: "dedicated", value: "infra", effect: "NoExecute" }] });
    expect(schedule(pod("p"), [tainted], new Map())).toHaveProperty("reasons");
    const tolerant = pod("p", {
      tolerations: [{ key: "dedicated", operator: "Equal", value: "infra", effect: "NoExecute" }],
    });
    expect(schedule(tolerant, [tainted], new Map())).toEqual({ node: "t" });
    const soft = node("s", { taints: [{ key: "x", effect: "PreferNoSchedule" }] });
    expect(schedule(pod("p"), [soft], new Map())).toEqual({ node: "s" });
    const affinity = pod("p", {
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchFields: [{ key: "metadata.name", operator: "In", values: ["node-2"] }] },
            ],
          },
        },
      },
    });
    expect(schedule(affinity, nodes, new Map())).toEqual({ node: "node-2" });
  });

  it("refuses a node whose host port is taken", () => {
    const hp = (name: string) =>
      pod(name, { containers: [{ name: "c", ports: [{ containerPort: 80, hostPort: 8080 }] }] });
    const r = schedule(hp("b"), [node("n")], new Map([["n", [hp("a")]]]));
    expect("reasons" in r && r.reasons).toContain(
      "1 node(s) didn't have free ports for the requested pod ports",
    );
  });

  it("matches tolerations as v1helper does", () => {
    expect(tolerates({ operator: "Exists" }, { key: "any", effect: "NoSchedule" })).toBe(true);
    expect(
      tolerates({ key: "k", operator: "Exists", effect: "NoSchedule" }, { key: "k", effect: "NoExecute" }),
    ).toBe(false);
    expect(tolerates({ key: "k", value: "v" }, { key: "k", value: "v", effect: "NoSchedule" })).toBe(true);
    expect(tolerates({ key: "k", value: "w" }, { key: "k", value: "v", effect: "NoSchedule" })).toBe(false);
  });

  it("prints no histogram when nothing was filtered", () => {
    expect(fitErrorMessage(2, new Map())).toBe(
      "0/2 nodes are available: preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
    );
  });
});
