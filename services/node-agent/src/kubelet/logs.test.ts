import { describe, expect, it } from "vitest";
import { renderLines, splitRecords, tail } from "./logs.ts";

const file =
  "2026-11-26T16:00:00.000000001Z stdout F hello\n" +
  "2026-11-26T16:00:01.000000001Z stderr F oops\n" +
  "2026-11-26T16:00:02.000000001Z stdout F  spaced  text\n" +
  "2026-11-26T16:00:03.0000";

describe("container logs", () => {
  it("prints lines with or without timestamps and keeps the unfinished record", () => {
    const { lines, rest } = splitRecords(file);
    expect(rest).toBe("2026-11-26T16:00:03.0000");
    expect(renderLines(lines, { timestamps: false })).toBe("hello\noops\n spaced  text\n");
    expect(renderLines(tail(lines, 1), { timestamps: true })).toBe(
      "2026-11-26T16:00:02.000000001Z  spaced  text\n",
    );
    expect(renderLines(lines, { timestamps: false, sinceTime: Date.parse("2026-11-26T16:00:01Z") })).toBe(
      "oops\n spaced  text\n",
    );
    expect(tail(lines, 0)).toEqual([]);
  });
  it("skips garbage lines", () => {
    expect(splitRecords("garbage\nx y\n").lines).toEqual([]);
  });
});
