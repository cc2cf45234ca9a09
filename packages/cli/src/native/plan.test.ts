import { describe, expect, it } from "vitest";
import { planLab, validateLabOptions } from "./plan.ts";

const defaults = {
  name: "klab",
  nodes: 2,
  apiPort: 6443,
  proxyMode: "iptables" as const,
  stateDir: "/tmp/x",
};

describe("the native lab's plan", () => {
  it("puts the control plane at .0.2 and nodes from .0.3 on the node network", () => {
    const plan = planLab({ ...defaults, nodes: 3 });
    expect(plan.controlPlane).toMatchObject({ netns: "klab-control-plane", ip: "172.29.0.2" });
    expect(plan.nodes.map((n) => [n.role, n.netns, n.ip])).toEqual([
      ["node-1", "klab-node-1", "172.29.0.3"],
      ["node-2", "klab-node-2", "172.29.0.4"],
      ["node-3", "klab-node-3", "172.29.0.5"],
    ]);
    expect(plan.labNetns).toBe("klab-lab");
    expect(plan.apiSocket).toBe("/tmp/x/run/apiserver.sock");
  });

  it("keeps bridge-side link names within the kernel's 15 characters", () => {
    const plan = planLab({ ...defaults, nodes: 200 });
    for (const m of [plan.controlPlane, ...plan.nodes]) expect(m.bridgePort.length).toBeLessThanOrEqual(15);
    expect(plan.nodes[199]!.ip).toBe("172.29.0.202");
  });

  it("refuses bad options with a message that says what to use", () => {
    expect(validateLabOptions({ ...defaults, name: "Bad_Name" })[0]).toMatch(/lowercase letters/);
    expect(validateLabOptions({ ...defaults, nodes: 0 })[0]).toMatch(/1 to 200 nodes/);
    expect(validateLabOptions({ ...defaults, proxyMode: "nft" as never })[0]).toMatch(
      /iptables, ipvs or userspace/,
    );
    expect(() => planLab({ ...defaults, apiPort: 70000 })).toThrow(/not a TCP port/);
  });
});
