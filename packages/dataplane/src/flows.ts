/**
 * Flow events: one for every new connection (with its translation and the rule and policy that
 * decided it), every drop (with its reason) and every connection's end (with its bytes). Kept in
 * a bounded ring buffer for `klab observe` and streamed to listeners.
 */
import { EventEmitter } from "node:events";
import type { PacketSource } from "./stages.ts";

export type Verdict = "FORWARDED" | "DROPPED" | "REJECTED";

export interface Endpoint {
  ip: string;
  port: number;
}

export interface FlowEvent {
  /** Wall-clock milliseconds. */
  time: number;
  node: string;
  type: "new" | "drop" | "end";
  verdict: Verdict;
  /** "TCP" | "UDP" | "ICMP", or "IP" when the packet could not be parsed that far. */
  protocol: string;
  source: PacketSource;
  src: Endpoint;
  dst: Endpoint;
  /** Source after SNAT (masquerade), when it changed. */
  natSrc?: Endpoint;
  /** Destination after DNAT (the Service backend), when it changed. */
  natDst?: Endpoint;
  /** The kube-proxy rule or IPVS service that decided, if any. */
  rule?: string;
  /** The NetworkPolicy (namespace/name) that allowed or isolated, if any. */
  policy?: string;
  /** Why it was dropped, or what answered it. */
  reason?: string;
  /** TCP state at the end, for "end" events. */
  state?: string;
  connection?: number;
  /** Packets and bytes: the packet's size for "new"/"drop", both directions' totals for "end". */
  packets?: number;
  bytes?: number;
}

export interface FlowFilter {
  verdict?: Verdict;
  type?: FlowEvent["type"];
  /** Matches either end, before or after NAT. */
  ip?: string;
}

export function matchesFilter(e: FlowEvent, f: FlowFilter | undefined): boolean {
  if (!f) return true;
  if (f.verdict && e.verdict !== f.verdict) return false;
  if (f.type && e.type !== f.type) return false;
  if (f.ip && ![e.src, e.dst, e.natSrc, e.natDst].some((x) => x?.ip === f.ip)) return false;
  return true;
}

export class FlowLog extends EventEmitter<{ flow: [FlowEvent] }> {
  readonly capacity: number;
  private readonly ring: (FlowEvent | undefined)[];
  private next = 0;
  private count = 0;
  /** Events ever recorded (the ring keeps only the last `capacity`). */
  total = 0;

  constructor(capacity = 10_000) {
    super();
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`flow log capacity must be a positive integer`);
    this.capacity = capacity;
    this.ring = new Array(capacity);
  }

  record(e: FlowEvent): void {
    this.ring[this.next] = e;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
    this.total++;
    if (this.listenerCount("flow") > 0) this.emit("flow", e);
  }

  /** The most recent events, oldest first. */
  recent(limit = this.capacity, filter?: FlowFilter): FlowEvent[] {
    const out: FlowEvent[] = [];
    for (let i = 0; i < this.count && out.length < limit; i++) {
      const e = this.ring[(this.next - 1 - i + this.capacity) % this.capacity]!;
      if (matchesFilter(e, filter)) out.push(e);
    }
    return out.reverse();
  }

  /**
   * Follow new events as an async iterator. A slow consumer loses the oldest queued events
   * (at most `queue` are held) instead of growing memory; stop with `return()` or the signal.
   */
  follow(
    opts: { filter?: FlowFilter; queue?: number; signal?: AbortSignal } = {},
  ): AsyncIterableIterator<FlowEvent> {
    const max = opts.queue ?? 1000;
    const queue: FlowEvent[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    const onFlow = (e: FlowEvent) => {
      if (!matchesFilter(e, opts.filter)) return;
      if (queue.length >= max) queue.shift();
      queue.push(e);
      wake?.();
    };
    const stop = () => {
      done = true;
      this.off("flow", onFlow);
      wake?.();
    };
    this.on("flow", onFlow);
    opts.signal?.addEventListener("abort", stop, { once: true });
    const iterator: AsyncIterableIterator<FlowEvent> = {
      [Symbol.asyncIterator]() {
        return iterator;
      },
      async next() {
        while (queue.length === 0 && !done) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        if (queue.length > 0) return { value: queue.shift()!, done: false };
        return { value: undefined, done: true };
      },
      async return() {
        stop();
        return { value: undefined, done: true };
      },
    };
    return iterator;
  }
}
