/** IPv4 CIDRs as numbers, for ipBlock matching on the packet path. */
export interface Cidr {
  base: number;
  mask: number;
  text: string;
}

export function ipv4ToNumber(ip: string): number | undefined {
  const parts = ip.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n >>> 0;
}

export function parseCidr(text: string): Cidr {
  const [ip, bits = "32"] = text.split("/");
  const n = ipv4ToNumber(ip ?? "");
  const prefix = Number(bits);
  if (n === undefined || !/^\d+$/.test(bits) || prefix > 32) {
    // IPv6 blocks cannot match the lab's IPv4 packets; say so rather than guess.
    throw new Error(`ipBlock "${text}" is not an IPv4 CIDR`);
  }
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { base: (n & mask) >>> 0, mask, text };
}

export function inCidr(ip: string, cidr: Cidr): boolean {
  const n = ipv4ToNumber(ip);
  return n !== undefined && (n & cidr.mask) >>> 0 === cidr.base;
}
