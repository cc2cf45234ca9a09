import type { FlowEvent } from "@klab/dataplane";
import { describe, expect, it } from "vitest";
import { formatFlow, identityOf, mergeFlows, stampMilli, type PodInfo } from "./observe.ts";

const pods = new Map<string, PodInfo>([
  ["10.244.1.10", { namespace: "x", name: "a", labels: { pod: "a" } }],
  ["10.244.2.10", { namespace: "y", name: "b", labels: { pod: "b" } }],
]);
const time = Date.UTC(2026, 10, 6, 16, 58, 1, 123);
const base = {
  time,
  protocol: "TCP",
  src: { ip: "10.244.1.10", port: 43512 },
  dst: { ip: "10.244.2.10", port: 80 },
};

describe("klab observe lines", () => {
  it("prints times as Go's StampMilli, day padded with a space", () => {
    expect(stampMilli(time)).toBe("Nov  6 16:58:01.123");
  });

  it("gives pods with the same namespace and labels the same identity", () => {
    const a = identityOf({ namespace: "x", name: "a-1", labels: { app: "web", "pod-template-hash": "1" } });
    const b = identityOf({ namespace: "x", name: "a-2", labels: { app: "web", "pod-template-hash": "2" } });
    expect(a).toBe(b);
    expect(a).toBeGreaterThanOrEqual(256);
    expect(identityOf({ namespace: "y", name: "a", labels: { app: "web" } })).not.toBe(a);
  });

  it("merges both nodes' views of a cross-node flow and names the policies by direction", () => {
    const events: FlowEvent[] = [
      { ...base, node: "node-1", type: "new", verdict: "FORWARDED", source: "pod", policy: "x/egress-ok" },
      { ...base, node: "node-2", type: "new", verdict: "FORWARDED", source: "overlay", policy: "y/allow-x" },
    ];
    const flows = mergeFlows(events);
    expect(flows).toHaveLength(1);
    const idA = identityOf(pods.get("10.244.1.10")!);
    const idB = identityOf(pods.get("10.244.2.10")!);
    expect(formatFlow(flows[0], pods)).toBe(
      `Nov  6 16:58:01.123: x/a:43512 (ID:${idA}) -> y/b:80 (ID:${idB}) policy-verdict:L3-L4 EGRESS ALLOWED by x/egress-ok, INGRESS ALLOWED by y/allow-x (TCP Flags: SYN) FORWARDED`,
    );
  });

  it("shows a policy drop at the destination node as the flow's verdict", () => {
    const events: FlowEvent[] = [
      { ...base, node: "node-1", type: "new", verdict: "FORWARDED", source: "pod" },
      {
        ...base,
        node: "node-2",
        type: "drop",
        verdict: "DROPPED",
        source: "overlay",
        state: "SYN",
        policy: "y/deny",
        reason: "y/b is isolated for ingress by y/deny and no rule allows it",
      },
    ];
    const [f] = mergeFlows(events);
    expect(formatFlow(f, pods)).toMatch(
      /x\/a:43512 \(ID:\d+\) <> y\/b:80 \(ID:\d+\) policy-verdict:none INGRESS DENIED \(TCP Flags: SYN\) DROPPED \(Policy denied\)$/,
    );
  });

  it("prints addresses that are no pod as world", () => {
    const [f] = mergeFlows([
      {
        ...base,
        dst: { ip: "203.0.113.10", port: 443 },
        node: "node-1",
        type: "new",
        verdict: "FORWARDED",
        source: "pod",
        protocol: "UDP",
      },
    ]);
    expect(formatFlow(f, pods)).toContain("-> 203.0.113.10:443 (world) to-endpoint (UDP) FORWARDED");
  });
});
