/**
 * Dataplane counters. The hot path bumps plain numbers (DataplaneStats); prom-client reads them
 * when scraped, so a packet costs no label hashing.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import type { PacketSource } from "./stages.ts";

export class DataplaneStats {
  packets: Record<PacketSource, number> = { pod: 0, node: 0, overlay: 0 };
  bytes: Record<PacketSource, number> = { pod: 0, node: 0, overlay: 0 };
  /** Packets handed out, by where they went. */
  out: Record<"pod" | "overlay" | "host", number> = { pod: 0, overlay: 0, host: 0 };
  drops = new Map<string, number>();
  newConnections: Record<string, number> = {};
  rejected = 0;
  generated = 0;

  drop(reason: string): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + 1);
  }

  dropped(reason?: string): number {
    if (reason !== undefined) return this.drops.get(reason) ?? 0;
    let n = 0;
    for (const v of this.drops.values()) n += v;
    return n;
  }
}

/** Register the dataplane's metrics on `registry`; `entries` reads the live conntrack size. */
export function registerDataplaneMetrics(
  registry: Registry,
  stats: DataplaneStats,
  entries: () => number,
): void {
  const registers = [registry];
  new Counter({
    name: "klab_dataplane_packets_total",
    help: "Packets read by the node dataplane, by where they entered (pod TUN, node lab0, overlay).",
    labelNames: ["source"],
    registers,
    collect() {
      this.reset();
      for (const [k, v] of Object.entries(stats.packets)) this.inc({ source: k }, v);
    },
  });
  new Counter({
    name: "klab_dataplane_bytes_total",
    help: "Bytes read by the node dataplane, by where they entered.",
    labelNames: ["source"],
    registers,
    collect() {
      this.reset();
      for (const [k, v] of Object.entries(stats.bytes)) this.inc({ source: k }, v);
    },
  });
  new Counter({
    name: "klab_dataplane_output_packets_total",
    help: "Packets sent on by the node dataplane, by where they went.",
    labelNames: ["target"],
    registers,
    collect() {
      this.reset();
      for (const [k, v] of Object.entries(stats.out)) this.inc({ target: k }, v);
    },
  });
  new Counter({
    name: "klab_dataplane_drops_total",
    help: "Packets dropped by the node dataplane, by reason.",
    labelNames: ["reason"],
    registers,
    collect() {
      this.reset();
      for (const [k, v] of stats.drops) this.inc({ reason: k }, v);
    },
  });
  new Counter({
    name: "klab_dataplane_connections_total",
    help: "New connections tracked by the node dataplane, by protocol.",
    labelNames: ["protocol"],
    registers,
    collect() {
      this.reset();
      for (const [k, v] of Object.entries(stats.newConnections)) this.inc({ protocol: k }, v);
    },
  });
  new Gauge({
    name: "klab_dataplane_conntrack_entries",
    help: "Entries in the node dataplane's conntrack table.",
    registers,
    collect() {
      this.set(entries());
    },
  });
}
