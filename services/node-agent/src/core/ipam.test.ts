import { describe, expect, it } from "vitest";
import { allocate, gatewayOf, IPAMError, newIPAM, release } from "./ipam.ts";

describe("host-local IPAM", () => {
  it("hands out .2 upward, keeps the gateway .1, and gives a pod the same IP twice", () => {
    let s = newIPAM("10.244.1.0/24");
    expect(gatewayOf("10.244.1.0/24")).toBe("10.244.1.1");
    const a = allocate(s, "ns/a/1");
    s = a.state;
    expect(a.ip).toBe("10.244.1.2");
    const b = allocate(s, "ns/b/2");
    s = b.state;
    expect(b.ip).toBe("10.244.1.3");
    expect(allocate(s, "ns/a/1").ip).toBe("10.244.1.2");
  });
  it("does not reuse a released IP at once (continues after the last reserved)", () => {
    let s = newIPAM("10.244.1.0/24");
    s = allocate(s, "a").state;
    s = allocate(s, "b").state;
    s = release(s, "a");
    expect(allocate(s, "c").ip).toBe("10.244.1.4");
  });
  it("wraps around and reports exhaustion with a clear error", () => {
    let s = newIPAM("10.244.1.0/30"); // only .2 usable
    s = allocate(s, "a").state;
    expect(() => allocate(s, "b")).toThrow(IPAMError);
    s = release(s, "a");
    expect(allocate(s, "b").ip).toBe("10.244.1.2");
  });
  it("rejects a malformed podCIDR", () => {
    expect(() => newIPAM("10.244.1.0")).toThrow(/not an IPv4 CIDR/);
    expect(() => newIPAM("300.1.1.0/24")).toThrow(/not an IPv4 address/);
  });
});
