// Dotted-quad helpers for the NAT code, which keeps IPv4 addresses as unsigned 32-bit numbers
// (as the packet parser does) so that matching a rule is integer arithmetic.

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function parseIPv4(s: string): number | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!OCTET.test(p)) return undefined;
    n = n * 256 + Number(p);
  }
  return n >>> 0;
}

export function formatIPv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function prefixMask(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** "10.0.0.0/8" or "10.1.2.3" (a /32), as iptables accepts them; undefined if malformed. */
export function parseCidr(s: string): { addr: number; mask: number; bits: number } | undefined {
  const [ip, bitsText, extra] = s.split("/");
  if (extra !== undefined) return undefined;
  const addr = parseIPv4(ip);
  if (addr === undefined) return undefined;
  let bits = 32;
  if (bitsText !== undefined) {
    if (!/^\d{1,2}$/.test(bitsText) || Number(bitsText) > 32) return undefined;
    bits = Number(bitsText);
  }
  const mask = prefixMask(bits);
  return { addr: (addr & mask) >>> 0, mask, bits };
}
