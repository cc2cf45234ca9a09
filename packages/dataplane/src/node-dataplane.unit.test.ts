import { describe, expect, it } from "vitest";
import { buildUDP } from "./build.ts";
import { parseIP } from "./ip.ts";
import { ServiceNat } from "./nat/service-nat.ts";
import { NodeDataplane } from "./node-dataplane.ts";

describe("NodeDataplane with kube-proxy's Service NAT", () => {
  it("holds IPVS addresses as its own and flushes the UDP entries a load names", () => {
    const dp = new NodeDataplane({
      nodeName: "node-a",
      nodeIP: "172.29.0.3",
      podCIDR: "10.244.1.0/24",
      overlay: false,
    });
    const nat = new ServiceNat();
    dp.useServiceNat(nat);
    nat.onHeldAddressesChanged!(["10.96.0.10"], []);
    expect(dp.pipeline.isLocalAddress("10.96.0.10")).toBe(true);
    nat.onHeldAddressesChanged!([], ["10.96.0.10"]);
    expect(dp.pipeline.isLocalAddress("10.96.0.10")).toBe(false);

    dp.pipeline.addPod("10.244.1.5");
    dp.setServiceNat({
      onNewConnection: (pkt) =>
        pkt.dstPort === 53 ? { action: "DNAT", toIP: "10.244.2.7", toPort: 5353 } : undefined,
    });
    const send = (dst: string, sport: number, dport: number) =>
      dp.receiveBatch(
        [
          buildUDP(
            { src: parseIP("10.244.1.5"), dst: parseIP(dst), srcPort: sport, dstPort: dport },
            Buffer.from("q"),
          ),
        ],
        { kind: "pod", podIP: parseIP("10.244.1.5") },
      );
    send("10.96.0.10", 1000, 53);
    send("10.96.0.11", 1001, 53);
    send("172.29.0.3", 1002, 30053);
    send("10.244.9.9", 1003, 99);
    expect(dp.conntrack.size).toBe(4);
    expect(dp.flushConntrack({ udpEndpoints: ["10.244.2.7:5353"] })).toBe(2);
    expect(dp.flushConntrack({ udpServiceIPs: [":30053"] })).toBe(1);
    expect(dp.flushConntrack({ udpServiceIPs: ["10.244.9.9:99"] })).toBe(1);
    expect(dp.conntrack.size).toBe(0);
  });
});
