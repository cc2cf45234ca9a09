import { describe, expect, it } from "vitest";
import { WorkQueue } from "./queue.ts";

describe("work queue", () => {
  it("queues a key once and hands it to one worker at a time", async () => {
    const q = new WorkQueue();
    q.add("a");
    q.add("a");
    q.add("b");
    expect(q.length).toBe(2);
    const k = await q.get();
    expect(k).toBe("a");
    q.add("a"); // added while processing: comes back after done()
    expect(await q.get()).toBe("b");
    q.done("a");
    expect(await q.get()).toBe("a");
  });

  it("wakes a waiting worker and returns undefined after shutdown", async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.add("x");
    expect(await waiting).toBe("x");
    const idle = q.get();
    q.shutdown();
    expect(await idle).toBeUndefined();
  });

  it("backs off retries per key and forgets on success", async () => {
    const q = new WorkQueue({ baseDelayMs: 1 });
    q.addRateLimited("k");
    q.addRateLimited("k");
    expect(q.retries("k")).toBe(2);
    expect(await q.get()).toBe("k");
    q.forget("k");
    expect(q.retries("k")).toBe(0);
  });
});
