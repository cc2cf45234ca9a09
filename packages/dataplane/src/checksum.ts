/**
 * The Internet checksum (RFC 1071) and its incremental update (RFC 1624), used when NAT
 * rewrites an address or port: the update costs a few operations instead of a pass over the
 * whole segment.
 */

/** One's-complement sum of 16-bit big-endian words over buf[start, end), not folded or inverted. */
export function sum16(buf: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  // Long aligned runs are summed as 32-bit little-endian words (RFC 1071 2(B): the sum does not
  // depend on byte order, the folded result is swapped back). TUN reads are 8-byte aligned.
  if (end - start >= 64 && ((buf.byteOffset + start) & 3) === 0) {
    const words = (end - start) >>> 2;
    const view = new Uint32Array(buf.buffer, buf.byteOffset + start, words);
    let acc = 0;
    for (let w = 0; w < words; w++) acc += view[w];
    while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
    sum += ((acc & 0xff) << 8) | (acc >>> 8);
    i = start + words * 4;
  }
  const even = end - ((end - i) & 1);
  for (; i < even; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (i < end) sum += buf[i] << 8;
  return sum;
}

export function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** The checksum field value for buf[start, end) (with the field itself zeroed or included as 0). */
export function checksum(buf: Uint8Array, start: number, end: number, initial = 0): number {
  return ~fold(sum16(buf, start, end, initial)) & 0xffff;
}

/** Sum of the TCP/UDP pseudo-header: source, destination, protocol, transport length. */
export function pseudoHeaderSum(src: number, dst: number, proto: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + length;
}

/** RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for a 16-bit field changing from m to m'. */
export function updateChecksum16(check: number, oldValue: number, newValue: number): number {
  const sum = (~check & 0xffff) + (~oldValue & 0xffff) + (newValue & 0xffff);
  return ~fold(sum) & 0xffff;
}

/** The same for a 32-bit field (an IPv4 address), as two 16-bit halves. */
export function updateChecksum32(check: number, oldValue: number, newValue: number): number {
  const sum =
    (~check & 0xffff) +
    (~(oldValue >>> 16) & 0xffff) +
    (~oldValue & 0xffff) +
    (newValue >>> 16) +
    (newValue & 0xffff);
  return ~fold(sum) & 0xffff;
}
