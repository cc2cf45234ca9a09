// ClusterIP allocation over the service CIDR, as kube-apiserver's bitmap ipallocator does it:
// the network and broadcast addresses are never handed out, random allocations prefer the upper
// band of the range, and the errors read as kube's do.
import { Bitmap, allocateWithOffset, rangeOffset } from "./bitmap.ts";
import { type Cidr, cidrContains, formatIPv4, parseCidr, parseIPv4 } from "./ipv4.ts";

export type AllocateResult = { ok: true } | { ok: false; error: string };

export class ServiceIPAllocator {
  readonly cidr: Cidr;
  private readonly bitmap: Bitmap;
  /** index 0 is network+1 */
  private readonly base: number;
  private readonly offset: number;

  constructor(
    cidrText: string,
    private readonly random: () => number = Math.random,
  ) {
    this.cidr = parseCidr(cidrText);
    // A /31 or /32 has no network/broadcast to skip (kube treats them the same way).
    const usable = this.cidr.size > 2 ? this.cidr.size - 2 : this.cidr.size;
    this.base = this.cidr.size > 2 ? this.cidr.network + 1 : this.cidr.network;
    this.bitmap = new Bitmap(usable);
    this.offset = rangeOffset(this.cidr.size, 16, 256, 16);
  }

  get used(): number {
    return this.bitmap.count;
  }

  get free(): number {
    return this.bitmap.free;
  }

  private index(ip: string): number | undefined {
    const n = parseIPv4(ip);
    if (n === undefined || !cidrContains(this.cidr, n)) return undefined;
    const i = n - this.base;
    return i >= 0 && i < this.bitmap.size ? i : undefined;
  }

  has(ip: string): boolean {
    const i = this.index(ip);
    return i !== undefined && this.bitmap.has(i);
  }

  /** Reserves the given IP. */
  allocate(ip: string): AllocateResult {
    const i = this.index(ip);
    if (i === undefined) {
      return {
        ok: false,
        error: `provided IP is not in the valid range. The range of valid IPs is ${this.cidr.text}`,
      };
    }
    if (!this.bitmap.allocate(i)) return { ok: false, error: "provided IP is already allocated" };
    return { ok: true };
  }

  /** A random free IP, or undefined when the range is full. */
  allocateNext(): string | undefined {
    const i = allocateWithOffset(this.bitmap, this.offset, this.random);
    return i < 0 ? undefined : formatIPv4(this.base + i);
  }

  release(ip: string): void {
    const i = this.index(ip);
    if (i !== undefined) this.bitmap.release(i);
  }

  /** Every IP currently allocated (for the repair loop). */
  *allocated(): Iterable<string> {
    for (let i = 0; i < this.bitmap.size; i++) if (this.bitmap.has(i)) yield formatIPv4(this.base + i);
  }
}
