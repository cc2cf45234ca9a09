import { describe, expect, it } from "vitest";
import { buildServicePorts } from "./service-ports.ts";
import { staleUdp, udpState } from "./stale-udp.ts";
import { ep, service, slice } from "./test-fixtures.ts";

const node = { name: "node-1", ips: ["172.29.0.3"] };
const dns = service("kube-system", "kube-dns", {
  clusterIP: "10.96.0.10",
  ports: [{ name: "dns", port: 53, protocol: "UDP" }],
});
const eps = (...ips: string[]) =>
  slice(
    "kube-system",
    "kube-dns",
    [{ name: "dns", port: 53, protocol: "UDP" }],
    ips.map((ip) => ep(ip)),
  );
const state = (...ips: string[]) => udpState(buildServicePorts([dns], ips.length ? [eps(...ips)] : [], node));

describe("stale UDP conntrack entries", () => {
  it("are flushed for an endpoint that went away", () => {
    expect(staleUdp(state("10.244.1.3", "10.244.2.4"), state("10.244.2.4"))).toEqual({
      udpEndpoints: ["10.244.1.3:53"],
      udpServiceIPs: [],
    });
  });

  it("are flushed for the Service address when it gets its first endpoint", () => {
    expect(staleUdp(state(), state("10.244.1.3"))).toEqual({
      udpEndpoints: [],
      udpServiceIPs: ["10.96.0.10:53"],
    });
  });

  it("are left alone when nothing changed, and on the first sync", () => {
    expect(staleUdp(state("10.244.1.3"), state("10.244.1.3"))).toEqual({
      udpEndpoints: [],
      udpServiceIPs: [],
    });
    expect(staleUdp(undefined, state("10.244.1.3"))).toEqual({ udpEndpoints: [], udpServiceIPs: [] });
  });
});
