/**
 * In-place NAT rewrites with incremental checksum updates (RFC 1624): changing an address or a
 * port touches the IPv4 header checksum and, for TCP/UDP, the transport checksum through the
 * pseudo-header, without summing the payload again.
 */
import { checksum, updateChecksum16, updateChecksum32 } from "./checksum.ts";
import {
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  type ParsedPacket,
} from "./packet.ts";

function transportChecksumOffset(proto: number, l4: number): number {
  if (proto === IPPROTO_TCP) return l4 + 16;
  if (proto === IPPROTO_UDP) return l4 + 6;
  return -1;
}

function rewriteAddress(pkt: ParsedPacket, field: 12 | 16, addr: number): void {
  const data = pkt.data;
  const old = data.readUInt32BE(field);
  if (old === addr) return;
  data.writeUInt32BE(addr >>> 0, field);
  data.writeUInt16BE(updateChecksum32(data.readUInt16BE(10), old, addr), 10);
  const at = transportChecksumOffset(pkt.proto, pkt.l4Offset);
  if (at >= 0) {
    const check = data.readUInt16BE(at);
    // A UDP checksum of 0 means the sender computed none; it stays none.
    if (!(pkt.proto === IPPROTO_UDP && check === 0)) {
      const updated = updateChecksum32(check, old, addr);
      data.writeUInt16BE(pkt.proto === IPPROTO_UDP && updated === 0 ? 0xffff : updated, at);
    }
  }
  if (field === 12) pkt.srcAddr = addr >>> 0;
  else pkt.dstAddr = addr >>> 0;
}

function rewritePort(pkt: ParsedPacket, which: "src" | "dst", port: number): void {
  const data = pkt.data;
  const l4 = pkt.l4Offset;
  if (pkt.proto === IPPROTO_TCP || pkt.proto === IPPROTO_UDP) {
    const at = which === "src" ? l4 : l4 + 2;
    const old = data.readUInt16BE(at);
    if (old === port) return;
    data.writeUInt16BE(port, at);
    const csAt = transportChecksumOffset(pkt.proto, l4);
    const check = data.readUInt16BE(csAt);
    if (!(pkt.proto === IPPROTO_UDP && check === 0)) {
      const updated = updateChecksum16(check, old, port);
      data.writeUInt16BE(pkt.proto === IPPROTO_UDP && updated === 0 ? 0xffff : updated, csAt);
    }
  } else if (pkt.proto === IPPROTO_ICMP) {
    // The echo identifier stands for the "port" (see ParsedPacket.srcPort).
    const isId =
      (which === "src" && pkt.icmpType === ICMP_ECHO_REQUEST) ||
      (which === "dst" && pkt.icmpType === ICMP_ECHO_REPLY);
    if (!isId) return;
    const old = data.readUInt16BE(l4 + 4);
    if (old === port) return;
    data.writeUInt16BE(port, l4 + 4);
    data.writeUInt16BE(updateChecksum16(data.readUInt16BE(l4 + 2), old, port), l4 + 2);
  } else {
    return;
  }
  if (which === "src") pkt.srcPort = port;
  else pkt.dstPort = port;
}

export function setSource(pkt: ParsedPacket, addr: number, port: number): void {
  rewriteAddress(pkt, 12, addr);
  rewritePort(pkt, "src", port);
}

export function setDestination(pkt: ParsedPacket, addr: number, port: number): void {
  rewriteAddress(pkt, 16, addr);
  rewritePort(pkt, "dst", port);
}

/** What a router does to every packet it forwards. Returns false when the TTL ran out. */
export function decrementTTL(pkt: ParsedPacket): boolean {
  const data = pkt.data;
  if (data[8] <= 1) return false;
  const oldWord = (data[8] << 8) | data[9];
  data[8]--;
  pkt.ttl = data[8];
  data.writeUInt16BE(updateChecksum16(data.readUInt16BE(10), oldWord, (data[8] << 8) | data[9]), 10);
  return true;
}

/**
 * Rewrite the packet quoted inside an ICMP error, as nf_nat does, so that an error about a
 * translated packet makes sense to the host that sent it before translation. The quoted
 * header's own checksum is updated and the ICMP checksum recomputed (errors are rare).
 */
export function rewriteQuoted(
  pkt: ParsedPacket,
  change: { srcAddr?: number; srcPort?: number; dstAddr?: number; dstPort?: number },
): void {
  const inner = pkt.inner;
  if (!inner) return;
  const data = pkt.data;
  const o = inner.offset;
  const l4 = o + inner.headerLength;
  const setAddr = (field: number, addr: number | undefined) => {
    if (addr === undefined) return;
    const old = data.readUInt32BE(o + field);
    if (old === addr) return;
    data.writeUInt32BE(addr >>> 0, o + field);
    data.writeUInt16BE(updateChecksum32(data.readUInt16BE(o + 10), old, addr), o + 10);
  };
  setAddr(12, change.srcAddr);
  setAddr(16, change.dstAddr);
  if (inner.proto === IPPROTO_TCP || inner.proto === IPPROTO_UDP) {
    if (change.srcPort !== undefined) data.writeUInt16BE(change.srcPort, l4);
    if (change.dstPort !== undefined) data.writeUInt16BE(change.dstPort, l4 + 2);
  } else if (inner.proto === IPPROTO_ICMP) {
    const type = data[l4];
    const id =
      type === ICMP_ECHO_REQUEST ? change.srcPort : type === ICMP_ECHO_REPLY ? change.dstPort : undefined;
    if (id !== undefined) data.writeUInt16BE(id, l4 + 4);
  }
  inner.srcAddr = change.srcAddr ?? inner.srcAddr;
  inner.dstAddr = change.dstAddr ?? inner.dstAddr;
  inner.srcPort = change.srcPort ?? inner.srcPort;
  inner.dstPort = change.dstPort ?? inner.dstPort;
  data.writeUInt16BE(0, pkt.l4Offset + 2);
  data.writeUInt16BE(checksum(data, pkt.l4Offset, pkt.totalLength), pkt.l4Offset + 2);
}
