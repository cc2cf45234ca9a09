import { createHash } from "node:crypto";

// kube-proxy names its per-service and per-endpoint chains after a hash because iptables
// caps chain names at 28 characters; the same inputs must give the same names as upstream so
// that a user can compare `klab iptables-save` with a real node.

const BASE32_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** RFC 4648 standard base32 (Go's base32.StdEncoding), padding omitted: callers take a prefix. */
export function base32(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32_ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

function hash16(input: string): string {
  return base32(createHash("sha256").update(input).digest()).slice(0, 16);
}

/** The part shared by KUBE-SVC-, KUBE-SVL-, KUBE-EXT- and KUBE-FW- for one service port. */
export function portProtoHash(servicePortName: string, protocol: string): string {
  return hash16(servicePortName + protocol.toLowerCase());
}

export const serviceClusterChain = (spn: string, proto: string) => `KUBE-SVC-${portProtoHash(spn, proto)}`;
export const serviceLocalChain = (spn: string, proto: string) => `KUBE-SVL-${portProtoHash(spn, proto)}`;
export const serviceExternalChain = (spn: string, proto: string) => `KUBE-EXT-${portProtoHash(spn, proto)}`;
export const serviceFirewallChain = (spn: string, proto: string) => `KUBE-FW-${portProtoHash(spn, proto)}`;

/** `endpoint` is host:port as net.JoinHostPort writes it ("10.180.0.1:80", "[fd00::1]:80"). */
export function endpointChain(servicePortName: string, protocol: string, endpoint: string): string {
  return `KUBE-SEP-${hash16(servicePortName + protocol.toLowerCase() + endpoint)}`;
}

export function joinHostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** kube-proxy's ServicePortName.String(): "ns/name:port", or "ns/name" for an unnamed port. */
export function servicePortNameString(namespace: string, name: string, portName: string | undefined): string {
  return portName ? `${namespace}/${name}:${portName}` : `${namespace}/${name}`;
}
