import { describe, expect, it } from "vitest";
import {
  buildEchoRequest,
  buildTCP,
  buildUDP,
  echoReplyTo,
  icmpErrorFor,
  refreshChecksums,
  tcpResetFor,
} from "./build.ts";
import { checksum, fold, sum16, updateChecksum16, updateChecksum32 } from "./checksum.ts";
import { ipToString, parseCIDR, parseIP } from "./ip.ts";
import { TCP_ACK, TCP_RST, TCP_SYN, type ParsedPacket } from "./packet.ts";
import { isParseError, parsePacket } from "./parse.ts";
import { decrementTTL, rewriteQuoted, setDestination, setSource } from "./rewrite.ts";

const A = parseIP("10.244.1.5");
const B = parseIP("10.244.2.7");

function parsed(buf: Buffer): ParsedPacket {
  const r = parsePacket(buf, { verifyTransportChecksum: true });
  if (isParseError(r)) throw new Error(`did not parse: ${r.error}`);
  return r;
}

describe("IPv4 addresses", () => {
  it("converts both ways and rejects junk", () => {
    expect(ipToString(parseIP("203.0.113.255"))).toBe("203.0.113.255");
    expect(parseIP("255.255.255.255")).toBe(0xffffffff);
    for (const bad of ["1.2.3", "1.2.3.256", "a.b.c.d", "1.2.3.4.5", "", "01234.1.1.1"])
      expect(() => parseIP(bad)).toThrow(/invalid IPv4/);
    expect(parseCIDR("10.244.1.77/24")).toEqual({ network: parseIP("10.244.1.0"), prefix: 24 });
    expect(() => parseCIDR("10.0.0.0/33")).toThrow(/invalid CIDR/);
  });
});

describe("checksums", () => {
  it("matches a known IPv4 header (RFC 1071 example header, checksum 0xb861)", () => {
    const hdr = Buffer.from("450000730000400040110000c0a80001c0a800c7", "hex");
    expect(checksum(hdr, 0, 20)).toBe(0xb861);
    hdr.writeUInt16BE(0xb861, 10);
    expect(fold(sum16(hdr, 0, 20))).toBe(0xffff);
  });

  it("an incremental update (RFC 1624) equals a full recomputation", () => {
    const buf = Buffer.alloc(40);
    for (let round = 0; round < 500; round++) {
      for (let i = 0; i < 40; i++) buf[i] = Math.floor(Math.random() * 256);
      buf.writeUInt16BE(0, 10);
      const before = checksum(buf, 0, 40);
      const old32 = buf.readUInt32BE(12);
      const new32 = Math.floor(Math.random() * 2 ** 32);
      buf.writeUInt32BE(new32, 12);
      const old16 = buf.readUInt16BE(20);
      const new16 = Math.floor(Math.random() * 65536);
      buf.writeUInt16BE(new16, 20);
      const incremental = updateChecksum16(updateChecksum32(before, old32, new32), old16, new16);
      const full = checksum(buf, 0, 40);
      // 0x0000 and 0xffff are the same number in one's complement
      expect(incremental === full || (incremental ^ full) === 0xffff).toBe(true);
    }
  });
});

describe("parsing", () => {
  it("reads a TCP SYN", () => {
    const p = parsed(
      buildTCP({ src: A, dst: B, srcPort: 40000, dstPort: 8080, seq: 1, ack: 0, flags: TCP_SYN }),
    );
    expect(p).toMatchObject({
      protocol: "TCP",
      srcPort: 40000,
      dstPort: 8080,
      tcpFlags: TCP_SYN,
      payloadLength: 0,
      ttl: 64,
    });
    expect(ipToString(p.srcAddr)).toBe("10.244.1.5");
  });

  it("keys ICMP echo on its identifier so the reply's tuple is the request's inverse", () => {
    const req = parsed(buildEchoRequest(A, B, 0x1234, 1, Buffer.from("hello")));
    expect([req.srcPort, req.dstPort]).toEqual([0x1234, 0]);
    const rep = parsed(echoReplyTo(req));
    expect([rep.srcAddr, rep.srcPort, rep.dstAddr, rep.dstPort]).toEqual([B, 0, A, 0x1234]);
  });

  it("refuses malformed packets with a reason and never throws", () => {
    const good = buildUDP({ src: A, dst: B, srcPort: 5353, dstPort: 53 }, Buffer.from("query"));
    const cases: [Buffer, string][] = [
      [Buffer.alloc(0), "short-packet"],
      [good.subarray(0, 19), "short-packet"],
      [Buffer.from("6000000000083aff" + "00".repeat(32), "hex"), "not-ipv4"],
      [Object.assign(Buffer.from(good), { 0: 0x44 }), "bad-ihl"],
      [Object.assign(Buffer.from(good), { 0: 0x4f }), "bad-ihl"],
      [
        (() => {
          const b = Buffer.from(good);
          b.writeUInt16BE(9999, 2);
          return b;
        })(),
        "bad-total-length",
      ],
      [
        (() => {
          const b = Buffer.from(good);
          b[12] ^= 0xff;
          return b;
        })(),
        "bad-ip-checksum",
      ],
      [
        (() => {
          const b = Buffer.from(good);
          b.writeUInt16BE(0x2000, 6);
          refreshChecksums(b);
          return b;
        })(),
        "fragment",
      ],
      [
        (() => {
          const b = Buffer.from(good);
          b[9] = 47;
          refreshChecksums(b);
          return b;
        })(),
        "unsupported-protocol",
      ],
      [
        (() => {
          const b = Buffer.from(good);
          b.writeUInt16BE(200, 24);
          return b;
        })(),
        "bad-udp-length",
      ],
      [
        (() => {
          const b = Buffer.from(good);
          b[b.length - 1] ^= 1;
          return b;
        })(),
        "bad-l4-checksum",
      ],
    ];
    for (const [buf, reason] of cases) {
      const r = parsePacket(buf, { verifyTransportChecksum: true });
      expect(isParseError(r) ? r.error : "parsed", `expected ${reason}`).toBe(reason);
    }
    const tcp = buildTCP({ src: A, dst: B, srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: TCP_SYN });
    tcp[32] = 0x20; // data offset 2 words
    refreshChecksums(tcp);
    expect(parsePacket(tcp)).toEqual({ error: "bad-tcp-offset" });
    for (let n = 0; n < 2000; n++) {
      const junk = Buffer.from(good);
      junk[Math.floor(Math.random() * junk.length)] = Math.floor(Math.random() * 256);
      expect(() =>
        parsePacket(junk.subarray(0, Math.floor(Math.random() * junk.length + 1)), {
          verifyTransportChecksum: true,
        }),
      ).not.toThrow();
    }
  });
});

describe("NAT rewrites", () => {
  it("keep every checksum valid for TCP, UDP and ICMP echo", () => {
    const C = parseIP("10.96.0.10");
    for (const pkt of [
      buildTCP(
        { src: A, dst: C, srcPort: 40000, dstPort: 80, seq: 7, ack: 0, flags: TCP_SYN },
        Buffer.from("x".repeat(101)),
      ),
      buildUDP({ src: A, dst: C, srcPort: 40000, dstPort: 53 }, Buffer.from("query")),
      buildEchoRequest(A, C, 77, 1, Buffer.from("ping")),
    ]) {
      const p = parsed(pkt);
      setDestination(p, B, 8080);
      setSource(p, parseIP("10.244.1.1"), 61000);
      expect(decrementTTL(p)).toBe(true);
      const again = parsed(p.data);
      expect(again.dstAddr).toBe(B);
      expect(again.ttl).toBe(63);
      if (again.protocol !== "ICMP") expect([again.srcPort, again.dstPort]).toEqual([61000, 8080]);
      else expect(again.srcPort).toBe(61000);
    }
  });

  it("leaves a UDP checksum of zero alone", () => {
    const pkt = buildUDP({ src: A, dst: B, srcPort: 1, dstPort: 2 }, Buffer.from("x"));
    pkt.writeUInt16BE(0, 26);
    const p = parsed(pkt);
    setDestination(p, parseIP("10.0.0.1"), 3);
    expect(pkt.readUInt16BE(26)).toBe(0);
  });

  it("does not forward a packet whose TTL ran out", () => {
    const p = parsed(buildUDP({ src: A, dst: B, srcPort: 1, dstPort: 2, ttl: 1 }, Buffer.from("x")));
    expect(decrementTTL(p)).toBe(false);
  });

  it("builds resets and ICMP errors that quote the packet, and rewrites the quote", () => {
    const syn = parsed(
      buildTCP({ src: A, dst: B, srcPort: 40000, dstPort: 81, seq: 100, ack: 0, flags: TCP_SYN }),
    );
    const rst = parsed(tcpResetFor(syn)!);
    expect(rst).toMatchObject({
      srcAddr: B,
      dstAddr: A,
      srcPort: 81,
      dstPort: 40000,
      tcpFlags: TCP_RST | TCP_ACK,
    });
    expect(rst.data.readUInt32BE(rst.l4Offset + 8)).toBe(101);
    const err = parsed(icmpErrorFor(syn, 3, 3, B)!);
    expect(err.inner).toMatchObject({ srcAddr: A, dstAddr: B, srcPort: 40000, dstPort: 81 });
    rewriteQuoted(err, { dstAddr: parseIP("10.96.0.1"), dstPort: 443 });
    const again = parsed(err.data);
    expect(again.inner).toMatchObject({ dstAddr: parseIP("10.96.0.1"), dstPort: 443 });
    expect(icmpErrorFor(err, 3, 3, A)).toBeUndefined();
  });
});

describe("checksum fast path", () => {
  it("sums aligned and unaligned runs of every length alike", () => {
    const backing = Buffer.alloc(2100);
    for (let i = 0; i < backing.length; i++) backing[i] = Math.floor(Math.random() * 256);
    const slow = (b: Uint8Array, s: number, e: number) => {
      let sum = 0;
      for (let i = s; i < e; i += 2) sum += (b[i] << 8) | (i + 1 < e ? b[i + 1] : 0);
      return fold(sum);
    };
    for (const offset of [0, 1, 2, 3, 4, 8]) {
      for (const len of [0, 1, 63, 64, 65, 66, 67, 1449, 1450, 2000]) {
        const view = backing.subarray(offset, offset + len);
        expect(fold(sum16(view, 0, len)), `offset ${offset} length ${len}`).toBe(slow(view, 0, len));
        if (len > 8) expect(fold(sum16(view, 4, len, 7))).toBe(fold(slow(view, 4, len) + 7));
      }
    }
  });
});
