import { describe, expect, it } from "vitest";
import { podMtuFrom } from "./cni-config.ts";

describe("the pod MTU from kube-system/klab-cni", () => {
  it("takes the ConfigMap's mtu", () => {
    expect(podMtuFrom({ mtu: "1350" }, 1450)).toEqual({ mtu: 1350 });
    expect(podMtuFrom({ mtu: " 9000 " }, 1450)).toEqual({ mtu: 9000 });
  });

  it("keeps the node's default when the ConfigMap or its key is missing", () => {
    expect(podMtuFrom(undefined, 1450)).toEqual({ mtu: 1450 });
    expect(podMtuFrom({ other: "x" }, 1450)).toEqual({ mtu: 1450 });
  });

  it("refuses what is not an MTU, saying why, and keeps the default", () => {
    for (const bad of ["abc", "1350.5", "0", "67", "65536", "-1", "1e3x"]) {
      const r = podMtuFrom({ mtu: bad }, 1450);
      expect(r.mtu).toBe(1450);
      expect(r.error).toMatch(/klab-cni: mtu .* is not an integer from 68 to 65535/);
    }
  });
});
