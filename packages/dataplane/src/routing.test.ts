import { describe, expect, it } from "vitest";
import { encapsulate, decapsulate, formatMac, macForIP, VXLAN_PORT } from "./vxlan.ts";
import { parseIP } from "./ip.ts";
import { RouteTable } from "./routing.ts";

describe("routing table", () => {
  it("picks the longest matching prefix", () => {
    const rt = new RouteTable();
    rt.add("0.0.0.0/0", { kind: "host" });
    rt.add("10.244.1.0/24", { kind: "blackhole" });
    rt.add("10.244.1.5/32", { kind: "pod", podIP: parseIP("10.244.1.5") });
    rt.add("10.244.2.0/24", { kind: "overlay", nodeIP: parseIP("172.29.0.4") });
    const kind = (ip: string) => rt.lookup(parseIP(ip))?.target.kind;
    expect(kind("10.244.1.5")).toBe("pod");
    expect(kind("10.244.1.6")).toBe("blackhole");
    expect(kind("10.244.2.200")).toBe("overlay");
    expect(kind("203.0.113.10")).toBe("host");
    rt.delete("10.244.1.5/32");
    expect(kind("10.244.1.5")).toBe("blackhole");
    expect(rt.format().split("\n")).toEqual([
      "10.244.1.0/24 blackhole",
      "10.244.2.0/24 via 172.29.0.4 dev vxlan",
      "default dev lab0",
    ]);
  });
});

describe("VXLAN", () => {
  it("wraps a packet as RFC 7348 says: flags, VNI 1, inner Ethernet with MACs from the node IPs", () => {
    const inner = Buffer.from(
      "4500001c000040004001" + "0000" + "0af40105" + "0af40207" + "0800f7ff00000000",
      "hex",
    );
    const frame = encapsulate(inner, parseIP("172.29.0.3"), parseIP("172.29.0.4"));
    expect(VXLAN_PORT).toBe(8472);
    expect(frame.subarray(0, 8).toString("hex")).toBe("0800000000000100");
    expect(formatMac(frame.subarray(8, 14))).toBe("02:4b:ac:1d:00:04");
    expect(formatMac(frame.subarray(14, 20))).toBe("02:4b:ac:1d:00:03");
    expect(frame.readUInt16BE(20)).toBe(0x0800);
    expect(frame.subarray(22).equals(inner)).toBe(true);
    const out = decapsulate(frame);
    expect("inner" in out && out.inner.equals(inner)).toBe(true);
    expect(macForIP(parseIP("10.0.0.1"))[0] & 0x03).toBe(0x02); // locally administered, unicast
  });

  it("refuses datagrams that are not ours", () => {
    const frame = encapsulate(Buffer.alloc(20, 0x45), 1, 2);
    expect(decapsulate(frame.subarray(0, 30))).toEqual({ error: "short-vxlan" });
    expect(decapsulate(Object.assign(Buffer.from(frame), { 0: 0 }))).toEqual({ error: "bad-vxlan-flags" });
    expect(decapsulate(Object.assign(Buffer.from(frame), { 6: 2 }))).toEqual({ error: "wrong-vni" });
    expect(decapsulate(Object.assign(Buffer.from(frame), { 20: 0x86, 21: 0xdd }))).toEqual({
      error: "not-ipv4-ethertype",
    });
  });
});
