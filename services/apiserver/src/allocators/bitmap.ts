// A fixed-size allocation bitmap, the structure kube-apiserver's ipallocator and portallocator use
// (pkg/registry/core/service/allocator): one bit per item, a running count, and a scan that starts
// at a random place so concurrent apiservers rarely race for the same item.

export class Bitmap {
  private readonly words: Uint32Array;
  private used = 0;

  constructor(readonly size: number) {
    this.words = new Uint32Array(Math.ceil(size / 32));
  }

  get count(): number {
    return this.used;
  }

  get free(): number {
    return this.size - this.used;
  }

  has(i: number): boolean {
    if (i < 0 || i >= this.size) return false;
    return (this.words[i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  /** Marks i taken; false if it already was (or is outside the range). */
  allocate(i: number): boolean {
    if (i < 0 || i >= this.size || this.has(i)) return false;
    this.words[i >>> 5]! |= 1 << (i & 31);
    this.used++;
    return true;
  }

  release(i: number): boolean {
    if (!this.has(i)) return false;
    this.words[i >>> 5]! &= ~(1 << (i & 31));
    this.used--;
    return true;
  }

  /**
   * The first free index in [from, to), scanning from a random point and wrapping around inside
   * that band; -1 if the band is full. Whole 32-bit words are skipped at a time.
   */
  findFree(from: number, to: number, random: () => number = Math.random): number {
    const len = to - from;
    if (len <= 0) return -1;
    const start = from + Math.floor(random() * len);
    const a = this.scan(start, to);
    return a >= 0 ? a : this.scan(from, start);
  }

  private scan(from: number, to: number): number {
    let i = from;
    while (i < to) {
      const w = this.words[i >>> 5]!;
      if (w === 0xffffffff && (i & 31) === 0 && i + 32 <= to) {
        i += 32;
        continue;
      }
      if ((w & (1 << (i & 31))) === 0) return i;
      i++;
    }
    return -1;
  }

  clear(): void {
    this.words.fill(0);
    this.used = 0;
  }
}

/**
 * kube's static/dynamic split (KEP-3070 for ClusterIPs, KEP-3668 for NodePorts): dynamic
 * allocations prefer the upper band so the lower band stays free for values users ask for
 * (10.96.0.10 for kube-dns). The lower band is size/step, clamped to [min, max].
 */
export function rangeOffset(size: number, min: number, max: number, step: number): number {
  if (size < min) return 0;
  return Math.max(min, Math.min(max, Math.floor(size / step)));
}

/** A free index, upper band first, then the lower band; -1 when full. */
export function allocateWithOffset(b: Bitmap, offset: number, random: () => number = Math.random): number {
  let i = b.findFree(offset, b.size, random);
  if (i < 0) i = b.findFree(0, offset, random);
  if (i >= 0) b.allocate(i);
  return i;
}
