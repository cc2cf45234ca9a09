import { checksum, pseudoHeaderSum } from "./checksum.ts";
import {
  ICMP_DEST_UNREACH,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  type ParsedPacket,
} from "./packet.ts";

export interface IPv4Fields {
  src: number;
  dst: number;
  proto: number;
  ttl?: number;
  id?: number;
  tos?: number;
  dontFragment?: boolean;
}

/** An IPv4 packet (20-byte header, no options) around `payload`, header checksum filled in. */
export function buildIPv4(f: IPv4Fields, payload: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(20 + payload.length);
  buf[0] = 0x45;
  buf[1] = f.tos ?? 0;
  buf.writeUInt16BE(buf.length, 2);
  buf.writeUInt16BE(f.id ?? 0, 4);
  buf.writeUInt16BE(f.dontFragment === false ? 0 : 0x4000, 6);
  buf[8] = f.ttl ?? 64;
  buf[9] = f.proto;
  buf.writeUInt16BE(0, 10);
  buf.writeUInt32BE(f.src >>> 0, 12);
  buf.writeUInt32BE(f.dst >>> 0, 16);
  buf.writeUInt16BE(checksum(buf, 0, 20), 10);
  buf.set(payload, 20);
  return buf;
}

/** ICMP message: type, code, 4 bytes of "rest of header", then data; checksum filled in. */
export function buildICMP(type: number, code: number, rest: number, data: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(8 + data.length);
  buf[0] = type;
  buf[1] = code;
  buf.writeUInt16BE(0, 2);
  buf.writeUInt32BE(rest >>> 0, 4);
  buf.set(data, 8);
  buf.writeUInt16BE(checksum(buf, 0, buf.length), 2);
  return buf;
}

export function buildEchoRequest(
  src: number,
  dst: number,
  id: number,
  seq: number,
  data: Uint8Array,
  ttl = 64,
): Buffer {
  return buildIPv4(
    { src, dst, proto: IPPROTO_ICMP, ttl },
    buildICMP(ICMP_ECHO_REQUEST, 0, ((id & 0xffff) << 16) | (seq & 0xffff), data),
  );
}

export interface UdpFields {
  src: number;
  dst: number;
  srcPort: number;
  dstPort: number;
  ttl?: number;
}

export function buildUDP(f: UdpFields, payload: Uint8Array): Buffer {
  const udp = Buffer.allocUnsafe(8 + payload.length);
  udp.writeUInt16BE(f.srcPort, 0);
  udp.writeUInt16BE(f.dstPort, 2);
  udp.writeUInt16BE(udp.length, 4);
  udp.writeUInt16BE(0, 6);
  udp.set(payload, 8);
  let sum = checksum(udp, 0, udp.length, pseudoHeaderSum(f.src, f.dst, IPPROTO_UDP, udp.length));
  if (sum === 0) sum = 0xffff; // 0 means "no checksum" in UDP
  udp.writeUInt16BE(sum, 6);
  return buildIPv4({ src: f.src, dst: f.dst, proto: IPPROTO_UDP, ttl: f.ttl }, udp);
}

export interface TcpFields extends UdpFields {
  seq: number;
  ack: number;
  flags: number;
  window?: number;
}

export function buildTCP(f: TcpFields, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const tcp = Buffer.allocUnsafe(20 + payload.length);
  tcp.writeUInt16BE(f.srcPort, 0);
  tcp.writeUInt16BE(f.dstPort, 2);
  tcp.writeUInt32BE(f.seq >>> 0, 4);
  tcp.writeUInt32BE(f.ack >>> 0, 8);
  tcp[12] = 5 << 4;
  tcp[13] = f.flags;
  tcp.writeUInt16BE(f.window ?? 65535, 14);
  tcp.writeUInt32BE(0, 16); // checksum and urgent pointer
  tcp.set(payload, 20);
  tcp.writeUInt16BE(checksum(tcp, 0, tcp.length, pseudoHeaderSum(f.src, f.dst, IPPROTO_TCP, tcp.length)), 16);
  return buildIPv4({ src: f.src, dst: f.dst, proto: IPPROTO_TCP, ttl: f.ttl }, tcp);
}

/** The reply a host sends to an echo request (same identifier, sequence and data). */
export function echoReplyTo(pkt: ParsedPacket, from: number = pkt.dstAddr): Buffer {
  const icmp = Buffer.from(pkt.data.subarray(pkt.l4Offset, pkt.totalLength));
  icmp[0] = ICMP_ECHO_REPLY;
  icmp[1] = 0;
  icmp.writeUInt16BE(0, 2);
  icmp.writeUInt16BE(checksum(icmp, 0, icmp.length), 2);
  return buildIPv4({ src: from, dst: pkt.srcAddr, proto: IPPROTO_ICMP }, icmp);
}

/** Linux quotes as much of the offending packet as fits in 576 bytes (RFC 1812 4.3.2.3). */
const ICMP_ERROR_MAX = 576;

/**
 * An ICMP error (destination unreachable, time exceeded) about `pkt`, sent from `from` back to
 * the packet's source. Returns undefined where a host must not answer: for ICMP errors (no
 * error about an error, RFC 1122 3.2.2).
 */
export function icmpErrorFor(
  pkt: ParsedPacket,
  type: number,
  code: number,
  from: number,
): Buffer | undefined {
  if (pkt.proto === IPPROTO_ICMP && pkt.icmpType !== ICMP_ECHO_REQUEST && pkt.icmpType !== ICMP_ECHO_REPLY)
    return undefined;
  const quoted = pkt.data.subarray(0, Math.min(pkt.totalLength, ICMP_ERROR_MAX - 28));
  return buildIPv4({ src: from, dst: pkt.srcAddr, proto: IPPROTO_ICMP }, buildICMP(type, code, 0, quoted));
}

export const ICMP_NET_UNREACH = 0;
export const ICMP_HOST_UNREACH = 1;
export const ICMP_PORT_UNREACH = 3;
export const ICMP_FRAG_NEEDED = 4;
export { ICMP_DEST_UNREACH };

/** The RST a host answers a segment with when nothing listens (RFC 793, "Reset Generation"). */
export function tcpResetFor(pkt: ParsedPacket): Buffer | undefined {
  if (pkt.proto !== IPPROTO_TCP || pkt.tcpFlags & TCP_RST) return undefined;
  const l4 = pkt.l4Offset;
  const seq = pkt.data.readUInt32BE(l4 + 4);
  const ackNo = pkt.data.readUInt32BE(l4 + 8);
  const base = { src: pkt.dstAddr, dst: pkt.srcAddr, srcPort: pkt.dstPort, dstPort: pkt.srcPort, window: 0 };
  if (pkt.tcpFlags & TCP_ACK) return buildTCP({ ...base, seq: ackNo, ack: 0, flags: TCP_RST });
  const segLen = pkt.payloadLength + (pkt.tcpFlags & TCP_SYN ? 1 : 0) + (pkt.tcpFlags & TCP_FIN ? 1 : 0);
  return buildTCP({ ...base, seq: 0, ack: (seq + segLen) >>> 0, flags: TCP_RST | TCP_ACK });
}

/** Recompute every checksum of a packet from scratch (tests and rare paths only); leaves a packet too broken to checksum as it is. */
export function refreshChecksums(buf: Buffer): void {
  const ihl = (buf[0] & 0x0f) * 4;
  const total = buf.readUInt16BE(2);
  if (ihl < 20 || total > buf.length || ihl + 8 > total) return;
  buf.writeUInt16BE(0, 10);
  buf.writeUInt16BE(checksum(buf, 0, ihl), 10);
  const proto = buf[9];
  const src = buf.readUInt32BE(12);
  const dst = buf.readUInt32BE(16);
  if (proto === IPPROTO_TCP && ihl + 20 <= total) {
    buf.writeUInt16BE(0, ihl + 16);
    buf.writeUInt16BE(checksum(buf, ihl, total, pseudoHeaderSum(src, dst, proto, total - ihl)), ihl + 16);
  } else if (proto === IPPROTO_UDP) {
    buf.writeUInt16BE(0, ihl + 6);
    const sum = checksum(buf, ihl, total, pseudoHeaderSum(src, dst, proto, total - ihl));
    buf.writeUInt16BE(sum === 0 ? 0xffff : sum, ihl + 6);
  } else if (proto === IPPROTO_ICMP) {
    buf.writeUInt16BE(0, ihl + 2);
    buf.writeUInt16BE(checksum(buf, ihl, total), ihl + 2);
  }
}
