// NodePort allocation over --service-node-port-range, as kube-apiserver's portallocator does it.
import { Bitmap, allocateWithOffset, rangeOffset } from "./bitmap.ts";
import type { AllocateResult } from "./service-ips.ts";

export interface PortRange {
  base: number;
  size: number;
}

export function formatPortRange(r: PortRange): string {
  return `${r.base}-${r.base + r.size - 1}`;
}

export class NodePortAllocator {
  private readonly bitmap: Bitmap;
  private readonly offset: number;

  constructor(
    readonly range: PortRange,
    private readonly random: () => number = Math.random,
  ) {
    this.bitmap = new Bitmap(range.size);
    this.offset = rangeOffset(range.size, 16, 128, 32);
  }

  get used(): number {
    return this.bitmap.count;
  }

  get free(): number {
    return this.bitmap.free;
  }

  has(port: number): boolean {
    return this.bitmap.has(port - this.range.base);
  }

  allocate(port: number): AllocateResult {
    const i = port - this.range.base;
    if (!Number.isInteger(port) || i < 0 || i >= this.range.size) {
      return {
        ok: false,
        error: `provided port is not in the valid range. The range of valid ports is ${formatPortRange(this.range)}`,
      };
    }
    if (!this.bitmap.allocate(i)) return { ok: false, error: "provided port is already allocated" };
    return { ok: true };
  }

  allocateNext(): number | undefined {
    const i = allocateWithOffset(this.bitmap, this.offset, this.random);
    return i < 0 ? undefined : this.range.base + i;
  }

  release(port: number): void {
    this.bitmap.release(port - this.range.base);
  }

  *allocated(): Iterable<number> {
    for (let i = 0; i < this.bitmap.size; i++) if (this.bitmap.has(i)) yield this.range.base + i;
  }
}
