/**
 * conntrack-fill: the node's conntrack table filled to nf_conntrack_max, as a flood of
 * never-answered UDP flows leaves it, so that new connections are dropped
 * ("nf_conntrack: table full, dropping packet") while established ones carry on.
 */
import { invert, type Conntrack, type ConntrackEntry, type Tuple } from "../conntrack.ts";
import { IPPROTO_UDP } from "../packet.ts";
import type { Fault } from "./model.ts";

/** A small node's nf_conntrack_max: full quickly, and cheap to hold in a lab. */
export const DEFAULT_FILL_MAX = 4096;
/** The flood's sources: 198.18.0.0/15, the range RFC 2544 sets aside for benchmarking. */
const FLOOD_BASE = (198 << 24) | (18 << 16);
const REFRESH_MS = 5000;

export class ConntrackFill {
  private readonly fillers = new Set<ConntrackEntry>();
  private readonly previousMax: number;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly conntrack: Conntrack,
    readonly fault: Fault,
    private readonly nodeIP: number,
  ) {
    this.previousMax = conntrack.max;
  }

  /** Lowers nf_conntrack_max as the fault asks and fills the table up to it; returns the entries added. */
  start(): number {
    const ct = this.conntrack;
    ct.max = Math.min(ct.max, this.fault.max ?? DEFAULT_FILL_MAX);
    let i = 0;
    while (ct.size < ct.max && i < 0x20000 * 4) {
      const original: Tuple = {
        proto: IPPROTO_UDP,
        src: (FLOOD_BASE + (i >>> 2)) >>> 0,
        srcPort: 1024 + (i & 3),
        dst: this.nodeIP,
        dstPort: 53,
      };
      i++;
      const e = ct.create(original, invert(original), { source: "overlay", rule: `fault:${this.fault.id}` });
      if (e) this.fillers.add(e);
    }
    // The flood keeps sending, so its entries never time out while the fault lasts.
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
    this.timer.unref();
    return this.fillers.size;
  }

  private refresh(): void {
    const seconds = this.conntrack.timeouts.udp_timeout;
    for (const e of this.fillers) this.conntrack.refresh(e, seconds);
  }

  get size(): number {
    return this.fillers.size;
  }

  /** Whether the table is full, so a packet that would open a connection is dropped. */
  get full(): boolean {
    return this.conntrack.size >= this.conntrack.max;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    const fillers = this.fillers;
    this.conntrack.flush((e) => fillers.has(e));
    fillers.clear();
    this.conntrack.max = this.previousMax;
  }
}
