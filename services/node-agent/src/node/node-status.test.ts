import { describe, expect, it } from "vitest";
import { microTime, nodeObject, nodeStatus, type NodeFacts } from "./node-status.ts";

const facts: NodeFacts = {
  nodeName: "node-1",
  nodeIP: "172.29.0.3",
  cpus: 4,
  memoryKi: 8_000_000,
  ephemeralStorageKi: 20_000_000,
  maxPods: 110,
  kernelVersion: "6.1.0",
  osImage: "Debian GNU/Linux 12 (bookworm)",
  machineID: "a".repeat(32),
  bootID: "b",
  kubeletPort: 10250,
};

describe("node registration", () => {
  it("labels the node as kubelet does, with no role label", () => {
    const n = nodeObject(facts);
    expect(n.metadata.labels).toMatchObject({
      "kubernetes.io/hostname": "node-1",
      "kubernetes.io/os": "linux",
    });
    expect(Object.keys(n.metadata.labels ?? {}).some((k) => k.startsWith("node-role.kubernetes.io/"))).toBe(
      false,
    );
  });
  it("reports kubelet's conditions, addresses and versions", () => {
    const s = nodeStatus(facts, true, "2026-11-26T16:00:00Z");
    expect(s.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ["MemoryPressure", "False", "KubeletHasSufficientMemory"],
      ["DiskPressure", "False", "KubeletHasNoDiskPressure"],
      ["PIDPressure", "False", "KubeletHasSufficientPID"],
      ["Ready", "True", "KubeletReady"],
    ]);
    expect(s.addresses).toEqual([
      { type: "InternalIP", address: "172.29.0.3" },
      { type: "Hostname", address: "node-1" },
    ]);
    expect(s.nodeInfo?.kubeletVersion).toMatch(/^v1\.32\./);
    expect(s.nodeInfo?.containerRuntimeVersion).toBe("klab://0.1.0");
    expect(s.capacity?.pods).toBe("110");
  });
  it("is NotReady until the pod network can be configured, and keeps transition times", () => {
    const a = nodeStatus(facts, false, "2026-11-26T16:00:00Z");
    expect(a.conditions?.[3]).toMatchObject({ status: "False", reason: "KubeletNotReady" });
    const b = nodeStatus(facts, false, "2026-11-26T16:00:10Z", a.conditions);
    expect(b.conditions?.[3].lastTransitionTime).toBe("2026-11-26T16:00:00Z");
    expect(b.conditions?.[3].lastHeartbeatTime).toBe("2026-11-26T16:00:10Z");
  });
  it("writes MicroTime", () => {
    expect(microTime(new Date("2026-11-26T16:00:00.123Z"))).toBe("2026-11-26T16:00:00.123000Z");
  });
});
