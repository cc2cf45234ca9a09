import { describe, expect, it } from "vitest";
import { BoundedFrequencyRunner, type Clock } from "./sync-runner.ts";

/** A manual clock: timers fire only when the test advances time. */
class FakeClock implements Clock {
  t = 0;
  private timers: Array<{ at: number; fn: () => void; id: number }> = [];
  private next = 1;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== h);
  }
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const first = this.timers[0];
      if (!first || first.at > end) break;
      this.timers.shift();
      this.t = first.at;
      first.fn();
      await new Promise((r) => setImmediate(r));
    }
    this.t = end;
  }
}

describe("BoundedFrequencyRunner", () => {
  it("collapses a burst of changes into syncs at most once per minSyncPeriod", async () => {
    const clock = new FakeClock();
    const runs: number[] = [];
    const r = new BoundedFrequencyRunner(() => void runs.push(clock.t), 1000, 30_000, clock);
    r.start();
    r.run();
    await clock.advance(0);
    expect(runs).toEqual([0]);
    for (let i = 0; i < 10; i++) {
      await clock.advance(50);
      r.run();
    }
    await clock.advance(2000);
    expect(runs).toEqual([0, 1000]);
  });

  it("syncs every syncPeriod even without changes", async () => {
    const clock = new FakeClock();
    const runs: number[] = [];
    const r = new BoundedFrequencyRunner(() => void runs.push(clock.t), 1000, 30_000, clock);
    r.start();
    await clock.advance(95_000);
    expect(runs).toEqual([30_000, 60_000, 90_000]);
    r.stop();
    await clock.advance(60_000);
    expect(runs).toHaveLength(3);
  });
});
