import { describe, expect, it } from "vitest";
import { NAME_ALPHABET, computeHash, generateName, randomSuffix, safeEncodeString } from "./names.ts";

describe("generated names", () => {
  it("uses kube's alphabet for 5-character suffixes", () => {
    for (let i = 0; i < 100; i++) expect(randomSuffix()).toMatch(/^[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    expect(NAME_ALPHABET).toHaveLength(27);
    expect(generateName("web-7d4b9c-")).toMatch(/^web-7d4b9c-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    expect(generateName("x".repeat(80))).toHaveLength(63);
  });

  it("encodes the FNV hash digits into the alphabet, as SafeEncodeString does", () => {
    expect(safeEncodeString("0123456789")).toBe("456789bcdf");
  });

  it("gives equal templates the same hash whatever their key order, and differs with the collision count", () => {
    const a = {
      metadata: { labels: { app: "web" } },
      spec: { containers: [{ name: "nginx", image: "nginx" }] },
    };
    const b = {
      spec: { containers: [{ image: "nginx", name: "nginx" }] },
      metadata: { labels: { app: "web" } },
    };
    expect(computeHash(a)).toBe(computeHash(b));
    expect(computeHash(a)).toMatch(/^[456789bcdf]{1,10}$/);
    expect(computeHash(a, 1)).not.toBe(computeHash(a));
  });
});
