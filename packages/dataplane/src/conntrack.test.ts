import { describe, expect, it } from "vitest";
import {
  Conntrack,
  DEFAULT_TIMEOUTS,
  formatTuple,
  ORIGINAL,
  REPLY,
  tcpInitialState,
  type Tuple,
} from "./conntrack.ts";
import { parseIP } from "./ip.ts";
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from "./packet.ts";

const C = parseIP("10.244.1.5");
const S = parseIP("10.244.2.7");

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (s: number) => (t += s * 1000) };
}

function tcp(): Tuple {
  return { proto: IPPROTO_TCP, src: C, srcPort: 40000, dst: S, dstPort: 80 };
}
function replyOf(t: Tuple): Tuple {
  return { proto: t.proto, src: t.dst, srcPort: t.dstPort, dst: t.src, dstPort: t.srcPort };
}

describe("conntrack", () => {
  it("uses Linux's default timeouts", () => {
    expect(DEFAULT_TIMEOUTS).toMatchObject({
      tcp_timeout_established: 432000,
      tcp_timeout_syn_sent: 120,
      tcp_timeout_time_wait: 120,
      tcp_timeout_close: 10,
      udp_timeout: 30,
      udp_timeout_stream: 120,
      icmp_timeout: 30,
    });
  });

  it("follows a TCP connection through the handshake and close", () => {
    const c = clock();
    const ct = new Conntrack({ now: c.now });
    const e = ct.create(tcp(), replyOf(tcp()), { tcpFlags: TCP_SYN, source: "pod" })!;
    const step = (dir: 0 | 1, flags: number) => {
      expect(ct.update(e, dir, 60, flags)).toBe("ok");
      return [e.tcpState, ct.secondsLeft(e)];
    };
    expect([e.tcpState, ct.secondsLeft(e)]).toEqual(["SYN_SENT", 120]);
    expect(step(REPLY, TCP_SYN | TCP_ACK)).toEqual(["SYN_RECV", 60]);
    expect(step(ORIGINAL, TCP_ACK)).toEqual(["ESTABLISHED", 432000]);
    expect(e.assured).toBe(true);
    expect(step(ORIGINAL, TCP_FIN | TCP_ACK)).toEqual(["FIN_WAIT", 120]);
    expect(step(REPLY, TCP_ACK)).toEqual(["CLOSE_WAIT", 60]);
    expect(step(REPLY, TCP_FIN | TCP_ACK)).toEqual(["LAST_ACK", 30]);
    expect(step(ORIGINAL, TCP_ACK)).toEqual(["TIME_WAIT", 120]);
    expect(e.packets).toEqual([3, 3]); // create() does not count the first packet; the pipeline does
    // A new SYN on the same tuple starts over as a new connection.
    expect(ct.update(e, ORIGINAL, 60, TCP_SYN)).toBe("reopen");
  });

  it("a reset closes the connection and it expires 10 s later", () => {
    const c = clock();
    const ct = new Conntrack({ now: c.now });
    const e = ct.create(tcp(), replyOf(tcp()), { tcpFlags: TCP_SYN, source: "pod" })!;
    expect(ct.update(e, REPLY, 40, TCP_RST | TCP_ACK)).toBe("ok");
    expect(e.tcpState).toBe("CLOSE");
    c.advance(9);
    expect(ct.lookup(IPPROTO_TCP, C, 40000, S, 80)?.dir).toBe(ORIGINAL);
    c.advance(1);
    expect(ct.lookup(IPPROTO_TCP, C, 40000, S, 80)).toBeUndefined();
    expect(ct.size).toBe(0);
  });

  it("refuses packets that make no sense for the state", () => {
    const ct = new Conntrack({ now: clock().now });
    expect(tcpInitialState(TCP_SYN | TCP_ACK)).toBeUndefined();
    expect(tcpInitialState(TCP_RST)).toBeUndefined();
    expect(tcpInitialState(TCP_ACK)).toBe("ESTABLISHED");
    const e = ct.create(tcp(), replyOf(tcp()), { tcpFlags: TCP_SYN, source: "pod" })!;
    expect(ct.update(e, ORIGINAL, 40, TCP_SYN | TCP_ACK)).toBe("invalid");
    expect(ct.update(e, ORIGINAL, 40, TCP_FIN)).toBe("invalid");
  });

  it("finds an entry from both directions, and replies by the translated tuple", () => {
    const ct = new Conntrack({ now: clock().now });
    const original: Tuple = {
      proto: IPPROTO_TCP,
      src: C,
      srcPort: 40000,
      dst: parseIP("10.96.0.10"),
      dstPort: 53,
    };
    const reply: Tuple = { proto: IPPROTO_TCP, src: S, srcPort: 53, dst: C, dstPort: 40000 };
    const e = ct.create(original, reply, { source: "pod" })!;
    expect(ct.lookup(IPPROTO_TCP, C, 40000, parseIP("10.96.0.10"), 53)).toEqual({ entry: e, dir: ORIGINAL });
    expect(ct.lookup(IPPROTO_TCP, S, 53, C, 40000)).toEqual({ entry: e, dir: REPLY });
    expect(ct.inUse(reply)).toBe(true);
    expect(ct.create(original, reply, { source: "pod" })).toBeUndefined();
    expect(formatTuple(original)).toBe("src=10.244.1.5 dst=10.96.0.10 sport=40000 dport=53");
  });

  it("gives UDP 30 s, and 120 s once it is a stream (replies still coming after 2 s)", () => {
    const c = clock();
    const ct = new Conntrack({ now: c.now });
    const t: Tuple = { proto: IPPROTO_UDP, src: C, srcPort: 5000, dst: S, dstPort: 53 };
    const e = ct.create(t, replyOf(t), { source: "pod" })!;
    expect(ct.secondsLeft(e)).toBe(30);
    ct.update(e, REPLY, 100);
    expect([ct.secondsLeft(e), e.assured]).toEqual([30, false]);
    c.advance(3);
    ct.update(e, ORIGINAL, 100);
    expect([ct.secondsLeft(e), e.assured]).toEqual([120, true]);
    c.advance(121);
    expect(ct.sweep()).toBe(1);
  });

  it("tracks ICMP echo for 30 s and reports removals", () => {
    const c = clock();
    const removed: string[] = [];
    const ct = new Conntrack({ now: c.now, onRemove: (_e, why) => removed.push(why) });
    const t: Tuple = { proto: IPPROTO_ICMP, src: C, srcPort: 9, dst: S, dstPort: 0 };
    ct.create(t, replyOf(t), { source: "pod" });
    expect(formatTuple(t)).toBe("src=10.244.1.5 dst=10.244.2.7 type=8 code=0 id=9");
    c.advance(29);
    expect(ct.sweep()).toBe(0);
    c.advance(1);
    expect(ct.sweep()).toBe(1);
    expect(removed).toEqual(["expired"]);
  });

  it("refuses new entries when the table is full (nf_conntrack_max)", () => {
    const ct = new Conntrack({ now: clock().now, max: 2 });
    for (let port = 1; port <= 3; port++) {
      const t: Tuple = { proto: IPPROTO_UDP, src: C, srcPort: port, dst: S, dstPort: 53 };
      const e = ct.create(t, replyOf(t), { source: "pod" });
      expect(e === undefined).toBe(port === 3);
    }
    expect(ct.flush((e) => e.original.srcPort === 1)).toBe(1);
    expect(ct.size).toBe(1);
  });
});

describe("conntrack -L format", () => {
  it("prints entries as conntrack(8) does", async () => {
    const { formatConntrackEntry } = await import("./conntrack.ts");
    const c = clock();
    const ct = new Conntrack({ now: c.now });
    const original: Tuple = {
      proto: IPPROTO_UDP,
      src: C,
      srcPort: 40000,
      dst: parseIP("10.96.0.10"),
      dstPort: 53,
    };
    const reply: Tuple = { proto: IPPROTO_UDP, src: S, srcPort: 53, dst: C, dstPort: 40000 };
    const e = ct.create(original, reply, { source: "pod" })!;
    expect(formatConntrackEntry(e, ct.secondsLeft(e))).toBe(
      "udp      17 30 src=10.244.1.5 dst=10.96.0.10 sport=40000 dport=53 [UNREPLIED] src=10.244.2.7 dst=10.244.1.5 sport=53 dport=40000 mark=0 use=1",
    );
    const t = ct.create(tcp(), replyOf(tcp()), { tcpFlags: TCP_SYN, source: "pod" })!;
    ct.update(t, REPLY, 40, TCP_SYN | TCP_ACK);
    ct.update(t, ORIGINAL, 40, TCP_ACK);
    expect(formatConntrackEntry(t, ct.secondsLeft(t))).toBe(
      "tcp      6 432000 ESTABLISHED src=10.244.1.5 dst=10.244.2.7 sport=40000 dport=80 src=10.244.2.7 dst=10.244.1.5 sport=80 dport=40000 [ASSURED] mark=0 use=1",
    );
  });
});
