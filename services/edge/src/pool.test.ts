import { describe, expect, it } from "vitest";
import type { Service } from "@klab/api";
import { assignAddresses, parsePool } from "./pool.ts";

const pool = parsePool("172.29.255.200-172.29.255.202");

function svc(
  name: string,
  extra: { type?: string; lbIP?: string; current?: string; created?: string } = {},
): Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name,
      namespace: "default",
      creationTimestamp: extra.created ?? `2026-01-01T00:00:0${name.length}Z`,
    },
    spec: {
      type: (extra.type ?? "LoadBalancer") as "LoadBalancer",
      loadBalancerIP: extra.lbIP,
      ports: [{ port: 80 }],
    },
    status: extra.current ? { loadBalancer: { ingress: [{ ip: extra.current }] } } : {},
  } as Service;
}

describe("LoadBalancer address assignment", () => {
  it("gives each LoadBalancer Service the next free pool address and ignores other types", () => {
    const { addresses } = assignAddresses([svc("a"), svc("bb"), svc("c", { type: "ClusterIP" })], pool);
    expect(Object.fromEntries(addresses)).toEqual({
      "default/a": "172.29.255.200",
      "default/bb": "172.29.255.201",
    });
  });

  it("keeps the address a Service already holds and honours spec.loadBalancerIP", () => {
    const { addresses } = assignAddresses(
      [svc("a"), svc("bb", { current: "172.29.255.200" }), svc("ccc", { lbIP: "172.29.255.202" })],
      pool,
    );
    expect(addresses.get("default/bb")).toBe("172.29.255.200");
    expect(addresses.get("default/ccc")).toBe("172.29.255.202");
    expect(addresses.get("default/a")).toBe("172.29.255.201");
  });

  it("leaves a Service pending, with the reason, when the pool is exhausted or the IP is outside it", () => {
    const { addresses, pending } = assignAddresses(
      [
        svc("a"),
        svc("bb"),
        svc("ccc"),
        svc("dddd"),
        svc("e", { lbIP: "10.0.0.1", created: "2026-01-01T00:00:00Z" }),
      ],
      pool,
    );
    expect(addresses.size).toBe(3);
    expect(pending.get("default/dddd")).toMatch(/no addresses left/);
    expect(pending.get("default/e")).toMatch(/not in the pool/);
  });

  it("rejects a malformed pool", () => {
    expect(() => parsePool("172.29.255.250-172.29.255.200")).toThrow(/comes before/);
    expect(() => parsePool("300.1.1.1")).toThrow(/not an IPv4 address/);
  });
});
