/**
 * The overlay's wire format: VXLAN (RFC 7348) over UDP port 8472 (the Linux kernel's and
 * flannel's port), VNI 1, carrying an Ethernet frame whose MACs are derived from the two nodes'
 * IPs. The MACs are synthetic (there is no ARP on the overlay) but locally administered, so
 * tcpdump and Wireshark decode every layer.
 */
export const VXLAN_PORT = 8472;
export const VXLAN_VNI = 1;
export const VXLAN_HEADER = 8;
export const ETHERNET_HEADER = 14;
export const OVERHEAD = VXLAN_HEADER + ETHERNET_HEADER;
/** Outer IPv4 + UDP + VXLAN + inner Ethernet: the 50 bytes flannel subtracts from the pod MTU. */
export const ENCAP_OVERHEAD = 20 + 8 + OVERHEAD;

const FLAG_VNI_VALID = 0x08;

/** 02:4b:a.b.c.d: locally administered, unicast ("K" for klab), then the IPv4 address. */
export function macForIP(ip: number, out: Buffer = Buffer.allocUnsafe(6), offset = 0): Buffer {
  out[offset] = 0x02;
  out[offset + 1] = 0x4b;
  out.writeUInt32BE(ip >>> 0, offset + 2);
  return out;
}

export function formatMac(mac: Uint8Array): string {
  return [...mac].map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/** A VXLAN datagram payload (what goes after the outer UDP header) around one IPv4 packet. */
export function encapsulate(
  inner: Uint8Array,
  srcNodeIP: number,
  dstNodeIP: number,
  vni = VXLAN_VNI,
): Buffer {
  const buf = Buffer.allocUnsafe(OVERHEAD + inner.length);
  buf[0] = FLAG_VNI_VALID;
  buf[1] = 0;
  buf[2] = 0;
  buf[3] = 0;
  buf.writeUIntBE(vni & 0xffffff, 4, 3);
  buf[7] = 0;
  macForIP(dstNodeIP, buf, 8);
  macForIP(srcNodeIP, buf, 14);
  buf.writeUInt16BE(0x0800, 20);
  buf.set(inner, OVERHEAD);
  return buf;
}

export type DecapResult =
  | { inner: Buffer; vni: number }
  | { error: "short-vxlan" | "bad-vxlan-flags" | "wrong-vni" | "not-ipv4-ethertype" };

/** Unwrap a VXLAN datagram payload; the inner packet is a view, not a copy. */
export function decapsulate(payload: Buffer, expectVni = VXLAN_VNI): DecapResult {
  if (payload.length < OVERHEAD + 20) return { error: "short-vxlan" };
  if ((payload[0] & FLAG_VNI_VALID) === 0) return { error: "bad-vxlan-flags" };
  const vni = payload.readUIntBE(4, 3);
  if (vni !== expectVni) return { error: "wrong-vni" };
  if (payload.readUInt16BE(20) !== 0x0800) return { error: "not-ipv4-ethertype" };
  return { inner: payload.subarray(OVERHEAD), vni };
}
