/** IPv4 addresses as unsigned 32-bit numbers, the form the hot path uses. */

export function parseIP(text: string): number {
  const parts = text.split(".");
  if (parts.length !== 4) throw new TypeError(`invalid IPv4 address ${JSON.stringify(text)}`);
  let n = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255)
      throw new TypeError(`invalid IPv4 address ${JSON.stringify(text)}`);
    n = n * 256 + Number(part);
  }
  return n >>> 0;
}

export function isIP(text: string): boolean {
  try {
    parseIP(text);
    return true;
  } catch {
    return false;
  }
}

export function ipToString(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export interface Cidr {
  network: number;
  prefix: number;
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parse "a.b.c.d/n" (or a bare address as /32); host bits are cleared. */
export function parseCIDR(text: string): Cidr {
  const [addr, len, extra] = text.split("/");
  const prefix = len === undefined ? 32 : Number(len);
  if (
    extra !== undefined ||
    !Number.isInteger(prefix) ||
    prefix < 0 ||
    prefix > 32 ||
    (len !== undefined && !/^\d+$/.test(len))
  ) {
    throw new TypeError(`invalid CIDR ${JSON.stringify(text)}`);
  }
  return { network: (parseIP(addr) & maskOf(prefix)) >>> 0, prefix };
}

export function cidrToString(c: Cidr): string {
  return `${ipToString(c.network)}/${c.prefix}`;
}

export function cidrContains(c: Cidr, addr: number): boolean {
  return (addr & maskOf(c.prefix)) >>> 0 === c.network;
}

/** The n-th address of a network (n = 0 is the network address itself). */
export function nthAddress(c: Cidr, n: number): number {
  return (c.network + n) >>> 0;
}
