import { describe, expect, it } from "vitest";
import { Backoff, crashLoopMessage, formatGoDuration } from "./backoff.ts";

describe("CrashLoopBackOff timing", () => {
  it("restarts at once the first time, then waits 10s, 20s, 40s … capped at 5m", () => {
    const b = new Backoff();
    let t = 0;
    expect(b.isInBackOffSince("c", t, t)).toBe(false);
    b.next("c", t);
    const windows: number[] = [];
    for (let i = 0; i < 7; i++) {
      t += 1000; // the container crashed again a second after its restart
      expect(b.isInBackOffSince("c", t, t)).toBe(true);
      windows.push(b.get("c"));
      t += b.get("c");
      expect(b.isInBackOffSince("c", t - b.get("c"), t)).toBe(false);
      b.next("c", t);
    }
    expect(windows).toEqual([10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]);
  });
  it("forgets a container that stayed up for twice the cap", () => {
    const b = new Backoff();
    b.next("c", 0);
    b.next("c", 1);
    expect(b.get("c")).toBe(20_000);
    expect(b.isInBackOffSince("c", 700_000, 700_001)).toBe(false);
    b.next("c", 700_001);
    expect(b.get("c")).toBe(10_000);
  });
  it("prints kubelet's message", () => {
    expect(formatGoDuration(300_000)).toBe("5m0s");
    expect(formatGoDuration(80_000)).toBe("1m20s");
    expect(crashLoopMessage(10_000, "app", "crash", "default", "abc")).toBe(
      "back-off 10s restarting failed container=app pod=crash_default(abc)",
    );
  });
});
