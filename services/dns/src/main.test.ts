import { describe, expect, it } from "vitest";
import { parseCorednsArgs } from "./main.ts";

describe("coredns command line", () => {
  it("takes Go-style single-dash flags, with a space or =", () => {
    expect(parseCorednsArgs(["-conf", "/etc/coredns/Corefile", "-dns.port", "1053"])).toEqual({
      conf: "/etc/coredns/Corefile",
      port: 1053,
    });
    expect(parseCorednsArgs(["-conf=/x", "--dns.port=5353", "-quiet", "-pidfile", "/run/c.pid"])).toEqual({
      conf: "/x",
      port: 5353,
      quiet: true,
      pidfile: "/run/c.pid",
    });
  });
  it("rejects what the coredns binary rejects", () => {
    expect(() => parseCorednsArgs(["-config", "x"])).toThrow("flag provided but not defined: -config");
    expect(() => parseCorednsArgs(["-conf"])).toThrow("flag needs an argument: -conf");
    expect(() => parseCorednsArgs(["-dns.port", "http"])).toThrow(
      'invalid value "http" for flag -dns.port: parse error',
    );
    expect(() => parseCorednsArgs(["Corefile"])).toThrow(/unexpected argument 'Corefile'/);
  });
});
