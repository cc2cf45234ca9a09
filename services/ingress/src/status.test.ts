import { describe, expect, it } from "vitest";
import type { Node, Service } from "@klab/api";
import { statusAddresses, withStatus } from "./status.ts";
import { ingress } from "./fixtures.ts";

const node = (name: string, internal: string, external?: string): Node => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: { name },
  status: {
    addresses: [
      { type: "InternalIP", address: internal },
      ...(external ? [{ type: "ExternalIP" as const, address: external }] : []),
    ],
  },
});
const lbService = (ips: string[]): Service => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name: "ingress-nginx-controller", namespace: "ingress-nginx" },
  spec: { type: "LoadBalancer" },
  status: { loadBalancer: { ingress: ips.map((ip) => ({ ip })) } },
});

describe("Ingress status address", () => {
  it("is the controller Service's LoadBalancer IP once the edge assigned one", () => {
    expect(statusAddresses(lbService(["172.29.255.200"]), [node("n1", "172.29.0.3")])).toEqual([
      { ip: "172.29.255.200" },
    ]);
  });
  it("falls back to the nodes' addresses (ExternalIP first), or the controller's own node", () => {
    const nodes = [node("n2", "172.29.0.4"), node("n1", "172.29.0.3", "203.0.113.7")];
    expect(statusAddresses(lbService([]), nodes)).toEqual([{ ip: "172.29.0.4" }, { ip: "203.0.113.7" }]);
    expect(statusAddresses(undefined, nodes, "n2")).toEqual([{ ip: "172.29.0.4" }]);
  });
  it("is only written when it changes", () => {
    const ing = ingress("x", { rules: [] });
    const updated = withStatus(ing, [{ ip: "1.2.3.4" }])!;
    expect(updated.status).toEqual({ loadBalancer: { ingress: [{ ip: "1.2.3.4" }] } });
    expect(withStatus(updated, [{ ip: "1.2.3.4" }])).toBeUndefined();
  });
});
