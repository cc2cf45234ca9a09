import { describe, expect, it } from "vitest";
import { parseQuantity } from "./quantity.ts";

describe("quantities", () => {
  it("read binary, decimal and exponent suffixes", () => {
    expect(parseQuantity("100m")).toBeCloseTo(0.1);
    expect(parseQuantity("1.5Gi")).toBe(1.5 * 2 ** 30);
    expect(parseQuantity("128Mi")).toBe(128 * 2 ** 20);
    expect(parseQuantity("2k")).toBe(2000);
    expect(parseQuantity("1e3")).toBe(1000);
    expect(parseQuantity(4)).toBe(4);
    expect(parseQuantity("lots")).toBeUndefined();
    expect(parseQuantity("1Zi")).toBeUndefined();
  });
});
