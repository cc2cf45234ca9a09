import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { FlowLog, type FlowEvent } from "./flows.ts";
import { DataplaneStats, registerDataplaneMetrics } from "./metrics.ts";

function event(n: number, verdict: FlowEvent["verdict"] = "FORWARDED"): FlowEvent {
  return {
    time: n,
    node: "node-a",
    type: verdict === "FORWARDED" ? "new" : "drop",
    verdict,
    protocol: "TCP",
    source: "pod",
    src: { ip: "10.244.1.5", port: 40000 + n },
    dst: { ip: "10.244.2.7", port: 80 },
  };
}

describe("flow log", () => {
  it("keeps the last events in a bounded ring, oldest first, with filters", () => {
    const log = new FlowLog(3);
    for (let i = 1; i <= 5; i++) log.record(event(i, i % 2 ? "FORWARDED" : "DROPPED"));
    expect(log.recent().map((e) => e.time)).toEqual([3, 4, 5]);
    expect(log.recent(10, { verdict: "DROPPED" }).map((e) => e.time)).toEqual([4]);
    expect(log.recent(1).map((e) => e.time)).toEqual([5]);
    expect(log.recent(10, { ip: "10.244.2.7" })).toHaveLength(3);
    expect(log.total).toBe(5);
    expect(() => new FlowLog(0)).toThrow(/positive integer/);
  });

  it("streams new events to followers, dropping the oldest for a slow one", async () => {
    const log = new FlowLog(10);
    const fast = log.follow({ filter: { verdict: "DROPPED" } });
    const slow = log.follow({ queue: 2 });
    for (let i = 1; i <= 4; i++) log.record(event(i, i % 2 ? "FORWARDED" : "DROPPED"));
    expect((await fast.next()).value?.time).toBe(2);
    expect((await fast.next()).value?.time).toBe(4);
    expect((await slow.next()).value?.time).toBe(3);
    expect((await slow.next()).value?.time).toBe(4);
    const pending = slow.next();
    log.record(event(6));
    expect((await pending).value?.time).toBe(6);
    await fast.return!();
    await slow.return!();
    expect(log.listenerCount("flow")).toBe(0);
    const ac = new AbortController();
    const stopped = log.follow({ signal: ac.signal });
    const waiting = stopped.next();
    ac.abort();
    expect((await waiting).done).toBe(true);
  });
});

describe("dataplane metrics", () => {
  it("exposes the counters as klab_dataplane_* for Prometheus", async () => {
    const registry = new Registry();
    const stats = new DataplaneStats();
    registerDataplaneMetrics(registry, stats, () => 42);
    stats.packets.pod += 3;
    stats.drop("bad-ip-checksum");
    stats.drop("bad-ip-checksum");
    stats.newConnections.TCP = 1;
    const text = await registry.metrics();
    expect(text).toContain('klab_dataplane_packets_total{source="pod"} 3');
    expect(text).toContain('klab_dataplane_drops_total{reason="bad-ip-checksum"} 2');
    expect(text).toContain('klab_dataplane_connections_total{protocol="TCP"} 1');
    expect(text).toContain("klab_dataplane_conntrack_entries 42");
  });
});
