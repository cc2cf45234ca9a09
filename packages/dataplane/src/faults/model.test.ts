import { describe, expect, it } from "vitest";
import {
  describeFault,
  FaultError,
  namePattern,
  parseDuration,
  parsePercent,
  parseRate,
  validateFault,
} from "./model.ts";

describe("fault model", () => {
  it("parses durations, percentages and tc-style rates", () => {
    expect(parseDuration("100ms")).toBe(100);
    expect(parseDuration("1.5s")).toBe(1500);
    expect(parseDuration("250")).toBe(250);
    expect(parsePercent("5%")).toBe(5);
    expect(parseRate("1mbit")).toBe(125_000);
    expect(parseRate("100kbps")).toBe(100_000);
    expect(() => parseDuration("soon")).toThrow(/not a duration/);
    expect(() => parsePercent("150%")).toThrow(/between 0% and 100%/);
    expect(() => parseRate("fast")).toThrow(/not a rate/);
  });

  it("validates each kind's target and options", () => {
    expect(
      validateFault({ id: "d1", kind: "delay", target: { pod: "10.244.1.5" }, delayMs: 100, jitterMs: 10 }),
    ).toEqual({
      id: "d1",
      kind: "delay",
      target: { pod: "10.244.1.5" },
      delayMs: 100,
      jitterMs: 10,
    });
    expect(validateFault({ id: "p", kind: "partition", target: { node: "172.18.0.3" } }).target.node).toBe(
      "172.18.0.3",
    );
    expect(validateFault({ id: "r", kind: "reset", target: { service: "10.96.0.20:80" } }).kind).toBe(
      "reset",
    );
    expect(
      validateFault({ id: "s", kind: "dns-servfail", target: { name: "*.example.com." } }).target.name,
    ).toBe("*.example.com.");
  });

  it("rejects bad input with a clear error", () => {
    const bad: [unknown, RegExp][] = [
      [null, /must be an object/],
      [{ id: "Bad_Id", kind: "loss", target: { pod: "10.0.0.1" }, percent: 1 }, /DNS label/],
      [{ id: "x", kind: "explode", target: {} }, /unknown kind "explode"/],
      [{ id: "x", kind: "loss", target: { pod: "10.0.0.1" } }, /percent is required/],
      [{ id: "x", kind: "loss", target: {}, percent: 1 }, /exactly one of pod/],
      [{ id: "x", kind: "loss", target: { pod: "nope" }, percent: 1 }, /IPv4 address/],
      [{ id: "x", kind: "partition", target: { pod: "10.0.0.1" } }, /targets a node/],
      [{ id: "x", kind: "delay", target: { pod: "10.0.0.1" }, delayMs: 10, jitterMs: 20 }, /jitterMs/],
      [{ id: "x", kind: "mtu", target: { node: "10.0.0.1" }, mtu: 20 }, /mtu must be/],
      [{ id: "x", kind: "reset", target: { service: "10.96.0.1" } }, /ClusterIP:port/],
      [{ id: "x", kind: "dns-delay", target: { name: "a b" }, delayMs: 1 }, /name pattern/],
    ];
    for (const [input, err] of bad) {
      expect(() => validateFault(input)).toThrow(FaultError);
      expect(() => validateFault(input)).toThrow(err);
    }
  });

  it("matches DNS name patterns with * and an optional trailing dot", () => {
    const re = namePattern("*.example.com.");
    expect(re.test("www.example.com.")).toBe(true);
    expect(re.test("WWW.Example.com")).toBe(true);
    expect(re.test("example.org.")).toBe(false);
    expect(namePattern("web.default.svc.cluster.local").test("web.default.svc.cluster.local.")).toBe(true);
  });

  it("describes a fault in one line", () => {
    expect(
      describeFault(validateFault({ id: "l", kind: "loss", target: { pod: "10.0.0.1" }, percent: 5 })),
    ).toBe("pod 10.0.0.1 5%");
  });
});
