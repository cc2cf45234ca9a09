import { fold, pseudoHeaderSum, sum16 } from "./checksum.ts";
import {
  ICMP_DEST_UNREACH,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  type ParsedPacket,
  type QuotedPacket,
} from "./packet.ts";

/** Why a packet was refused by the parser; each is a drop reason counted by the dataplane. */
export type ParseError =
  | "short-packet"
  | "not-ipv4"
  | "bad-ihl"
  | "bad-total-length"
  | "bad-ip-checksum"
  | "fragment"
  | "unsupported-protocol"
  | "short-transport-header"
  | "bad-tcp-offset"
  | "bad-udp-length"
  | "bad-l4-checksum";

export type ParseResult = ParsedPacket | { error: ParseError };

export interface ParseOptions {
  /** Verify TCP/UDP/ICMP checksums too (the IPv4 header checksum is always verified). */
  verifyTransportChecksum?: boolean;
}

const ICMP_ERROR_TYPES = new Set([ICMP_DEST_UNREACH, 4, 5, 11, 12]);

/**
 * Parse one IPv4 packet. Never throws: anything malformed comes back as `{ error }`.
 * Fragments are refused: pods get an MTU that keeps the overlay from fragmenting, and the
 * dataplane does no reassembly.
 */
export function parsePacket(input: Buffer, opts: ParseOptions = {}): ParseResult {
  if (input.length < 20)
    return { error: input.length > 0 && input[0] >> 4 !== 4 ? "not-ipv4" : "short-packet" };
  const vihl = input[0];
  if (vihl >> 4 !== 4) return { error: "not-ipv4" };
  const headerLength = (vihl & 0x0f) * 4;
  if (headerLength < 20 || headerLength > input.length) return { error: "bad-ihl" };
  const totalLength = input.readUInt16BE(2);
  if (totalLength < headerLength || totalLength > input.length) return { error: "bad-total-length" };
  if (fold(sum16(input, 0, headerLength)) !== 0xffff) return { error: "bad-ip-checksum" };
  const fragment = input.readUInt16BE(6);
  if ((fragment & 0x3fff) !== 0) return { error: "fragment" };
  const data = totalLength === input.length ? input : input.subarray(0, totalLength);
  const proto = data[9];
  const srcAddr = data.readUInt32BE(12);
  const dstAddr = data.readUInt32BE(16);
  const l4 = headerLength;
  const l4Length = totalLength - l4;
  const pkt: ParsedPacket = {
    data,
    headerLength,
    totalLength,
    ttl: data[8],
    proto,
    protocol: "TCP",
    srcAddr,
    dstAddr,
    l4Offset: l4,
    srcPort: 0,
    dstPort: 0,
    tcpFlags: 0,
    icmpType: -1,
    icmpCode: -1,
    payloadLength: 0,
  };
  if (proto === IPPROTO_TCP) {
    if (l4Length < 20) return { error: "short-transport-header" };
    const offset = (data[l4 + 12] >> 4) * 4;
    if (offset < 20 || offset > l4Length) return { error: "bad-tcp-offset" };
    pkt.srcPort = data.readUInt16BE(l4);
    pkt.dstPort = data.readUInt16BE(l4 + 2);
    pkt.tcpFlags = data[l4 + 13];
    pkt.payloadLength = l4Length - offset;
    if (
      opts.verifyTransportChecksum &&
      !transportChecksumOK(data, l4, totalLength, srcAddr, dstAddr, proto)
    ) {
      return { error: "bad-l4-checksum" };
    }
  } else if (proto === IPPROTO_UDP) {
    if (l4Length < 8) return { error: "short-transport-header" };
    const udpLength = data.readUInt16BE(l4 + 4);
    if (udpLength < 8 || udpLength > l4Length) return { error: "bad-udp-length" };
    pkt.protocol = "UDP";
    pkt.srcPort = data.readUInt16BE(l4);
    pkt.dstPort = data.readUInt16BE(l4 + 2);
    pkt.payloadLength = udpLength - 8;
    if (
      opts.verifyTransportChecksum &&
      data.readUInt16BE(l4 + 6) !== 0 &&
      !transportChecksumOK(data, l4, l4 + udpLength, srcAddr, dstAddr, proto)
    ) {
      return { error: "bad-l4-checksum" };
    }
  } else if (proto === IPPROTO_ICMP) {
    if (l4Length < 8) return { error: "short-transport-header" };
    pkt.protocol = "ICMP";
    pkt.icmpType = data[l4];
    pkt.icmpCode = data[l4 + 1];
    pkt.payloadLength = l4Length - 8;
    if (opts.verifyTransportChecksum && fold(sum16(data, l4, totalLength)) !== 0xffff)
      return { error: "bad-l4-checksum" };
    if (pkt.icmpType === ICMP_ECHO_REQUEST) pkt.srcPort = data.readUInt16BE(l4 + 4);
    else if (pkt.icmpType === ICMP_ECHO_REPLY) pkt.dstPort = data.readUInt16BE(l4 + 4);
    else if (ICMP_ERROR_TYPES.has(pkt.icmpType)) pkt.inner = parseQuoted(data, l4 + 8);
  } else {
    return { error: "unsupported-protocol" };
  }
  return pkt;
}

function transportChecksumOK(
  data: Buffer,
  l4: number,
  end: number,
  src: number,
  dst: number,
  proto: number,
): boolean {
  return fold(sum16(data, l4, end, pseudoHeaderSum(src, dst, proto, end - l4))) === 0xffff;
}

/** The packet an ICMP error quotes: its IPv4 header and at least 8 bytes of transport header. */
function parseQuoted(data: Buffer, offset: number): QuotedPacket | undefined {
  if (data.length < offset + 20 || data[offset] >> 4 !== 4) return undefined;
  const headerLength = (data[offset] & 0x0f) * 4;
  if (headerLength < 20 || data.length < offset + headerLength + 8) return undefined;
  const proto = data[offset + 9];
  const l4 = offset + headerLength;
  let srcPort = 0;
  let dstPort = 0;
  if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) {
    srcPort = data.readUInt16BE(l4);
    dstPort = data.readUInt16BE(l4 + 2);
  } else if (proto === IPPROTO_ICMP) {
    const type = data[l4];
    if (type === ICMP_ECHO_REQUEST) srcPort = data.readUInt16BE(l4 + 4);
    else if (type === ICMP_ECHO_REPLY) dstPort = data.readUInt16BE(l4 + 4);
    else return undefined;
  } else {
    return undefined;
  }
  return {
    offset,
    headerLength,
    proto,
    srcAddr: data.readUInt32BE(offset + 12),
    dstAddr: data.readUInt32BE(offset + 16),
    srcPort,
    dstPort,
  };
}

export function isParseError(r: ParseResult): r is { error: ParseError } {
  return (r as { error?: ParseError }).error !== undefined;
}
