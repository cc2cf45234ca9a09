import { describe, expect, it } from "vitest";
import { parseListeners } from "./nodeports.ts";

describe("NodePort listeners", () => {
  it("reads the local ports of ss -H -l output, IPv4 and IPv6", () => {
    const out = [
      "LISTEN 0      511          0.0.0.0:31006      0.0.0.0:*",
      "LISTEN 0      511          0.0.0.0:10256      0.0.0.0:*",
      "LISTEN 0      4096            [::]:31006         [::]:*",
      "UNCONN 0      0                  *:32000            *:*",
      "",
      "garbage",
    ].join("\n");
    expect(parseListeners(out)).toEqual([10256, 31006, 32000]);
  });
});
