/**
 * The parsed view of one IPv4 packet. Parsing never copies: every field points into `data`,
 * which is the packet as it came off a TUN (or out of a VXLAN datagram). Addresses are kept as
 * unsigned 32-bit numbers because the hot path compares and hashes them for every packet;
 * use `ipToString` / `parseIP` (ip.ts) at the edges.
 */
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** Kubernetes' own protocol names (core/v1 Protocol), plus ICMP which Services never carry. */
export type Protocol = "TCP" | "UDP" | "ICMP";

export interface ParsedPacket {
  /** The whole IPv4 packet (exactly totalLength bytes). */
  data: Buffer;
  /** IPv4 header length in bytes (IHL × 4). */
  headerLength: number;
  totalLength: number;
  ttl: number;
  /** IP protocol number (6 TCP, 17 UDP, 1 ICMP). */
  proto: number;
  protocol: Protocol;
  srcAddr: number;
  dstAddr: number;
  /** Offset of the transport header inside `data`. */
  l4Offset: number;
  /**
   * TCP/UDP ports. ICMP echo is keyed on its identifier as Linux conntrack does, placed so that
   * a reply's tuple is the inverse of its request's: an echo request has srcPort = identifier
   * and dstPort = 0, an echo reply srcPort = 0 and dstPort = identifier. Other ICMP: both 0.
   */
  srcPort: number;
  dstPort: number;
  /** TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10), 0 otherwise. */
  tcpFlags: number;
  /** ICMP type and code; -1 when not ICMP. */
  icmpType: number;
  icmpCode: number;
  /** Bytes of transport payload (after the TCP/UDP/ICMP header). */
  payloadLength: number;
  /**
   * For ICMP errors (destination unreachable, time exceeded, …): the packet quoted inside,
   * parsed as far as its first 8 transport bytes allow. Conntrack uses it to relate the error
   * to the connection it belongs to, as nf_conntrack does.
   */
  inner?: QuotedPacket;
}

export interface QuotedPacket {
  /** Offset of the quoted IPv4 header inside the outer packet's `data`. */
  offset: number;
  headerLength: number;
  proto: number;
  srcAddr: number;
  dstAddr: number;
  srcPort: number;
  dstPort: number;
}

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;
