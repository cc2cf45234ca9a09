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
/** Four source ports on each address of 198.18.0.0/15. */
const FLOOD_FLOWS = 0x20000 * 4;

export class ConntrackFill {
  private readonly fillers = new Set<ConntrackEntry>();
  private nextFlow = 0;
  private readonly previousMax: number;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly conntrack: Conntrack,
    readonly fault: Fault,
    private readonly nodeIP: number,
  ) {
    this.previousMax = conntrack.max;
  }

  /** Lowers nf_conntrack_max as the fault asks and fills the table up to it. */
  start(): void {
    const ct = this.conntrack;
    // Never more than the flood has flows: a table it cannot fill would be topped up in vain on
    // every packet.
    ct.max = Math.min(ct.max, this.fault.max ?? DEFAULT_FILL_MAX, FLOOD_FLOWS);
    this.topUp();
    // The flood keeps sending, so its entries never time out while the fault lasts.
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
    this.timer.unref();
  }

  /**
   * Fill every free slot with a flood flow. A flood at line rate takes a slot the moment another
   * connection's entry frees it (expired, closed, flushed), long before a new connection could.
   */
  private topUp(): void {
    const ct = this.conntrack;
    for (let tries = 0; ct.size < ct.max && tries < FLOOD_FLOWS; tries++) {
      const i = this.nextFlow;
      this.nextFlow = (i + 1) % FLOOD_FLOWS;
      const original: Tuple = {
        proto: IPPROTO_UDP,
        src: (FLOOD_BASE + (i >>> 2)) >>> 0,
        srcPort: 1024 + (i & 3),
        dst: this.nodeIP,
        dstPort: 53,
      };
      const e = ct.create(original, invert(original), { source: "overlay", rule: `fault:${this.fault.id}` });
      if (e) this.fillers.add(e);
    }
  }

  private refresh(): void {
    const seconds = this.conntrack.timeouts.udp_timeout;
    for (const e of this.fillers) {
      // A flush (conntrack -F, conntrack-flush) may have taken some: the flood's new flows replace them.
      if (this.conntrack.has(e)) this.conntrack.refresh(e, seconds);
      else this.fillers.delete(e);
    }
    this.topUp();
  }

  /** The flood's entries in the table now. */
  get size(): number {
    return this.fillers.size;
  }

  /** Tops the table up and says whether it is full, so that a packet that would open a connection is dropped. */
  keepFull(): boolean {
    this.topUp();
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
