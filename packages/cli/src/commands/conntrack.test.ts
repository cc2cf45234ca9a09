import { describe, expect, it } from "vitest";
import { conntrackRequestFor } from "./conntrack.ts";

describe("klab conntrack flags", () => {
  it("maps -L/-C/-F/-D and the filters to requests, in conntrack's terms", () => {
    expect(conntrackRequestFor({ name: "klab", dump: true, proto: "TCP", dst: "10.96.0.10" })).toEqual({
      op: "list",
      proto: "tcp",
      src: undefined,
      dst: "10.96.0.10",
      sport: undefined,
      dport: undefined,
    });
    expect(conntrackRequestFor({ name: "klab", count: true })).toEqual({ op: "count" });
    expect(conntrackRequestFor({ name: "klab", flush: true })).toEqual({ op: "flush" });
    expect(conntrackRequestFor({ name: "klab", delete: true, dport: "53" })).toMatchObject({
      op: "flush",
      dport: 53,
    });
  });

  it("refuses what conntrack would refuse", () => {
    expect(() => conntrackRequestFor({ name: "klab" })).toThrow(/no command specified/);
    expect(() => conntrackRequestFor({ name: "klab", dump: true, count: true })).toThrow(/one command/);
    expect(() => conntrackRequestFor({ name: "klab", dump: true, proto: "gre" })).toThrow(/not tracked/);
    expect(() => conntrackRequestFor({ name: "klab", dump: true, dport: "http" })).toThrow(/not a port/);
    expect(() => conntrackRequestFor({ name: "klab", delete: true })).toThrow(/-D needs a filter/);
  });
});
