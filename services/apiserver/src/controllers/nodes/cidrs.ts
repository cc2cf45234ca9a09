// Pod CIDRs for nodes, cut from --cluster-cidr in --node-cidr-mask-size pieces, as the node IPAM
// controller's range allocator does it (pkg/controller/nodeipam/ipam/cidrset).
import { Bitmap } from "../../allocators/bitmap.ts";
import { cidrContains, formatIPv4, parseCidr, parseIPv4, type Cidr } from "../../allocators/ipv4.ts";

export class CidrSet {
  readonly cluster: Cidr;
  private readonly used: Bitmap;
  private readonly step: number;
  private next = 0;

  constructor(
    clusterCidr: string,
    readonly maskSize: number,
  ) {
    this.cluster = parseCidr(clusterCidr);
    if (maskSize < this.cluster.bits || maskSize > 32) {
      throw new Error(`node CIDR mask size ${maskSize} does not fit in cluster CIDR ${this.cluster.text}`);
    }
    if (maskSize - this.cluster.bits > 24) {
      throw new Error(`cluster CIDR ${this.cluster.text} holds too many /${maskSize} subnets (at most 2^24)`);
    }
    this.step = 2 ** (32 - maskSize);
    this.used = new Bitmap(2 ** (maskSize - this.cluster.bits));
  }

  get free(): number {
    return this.used.free;
  }

  private indexOf(cidr: string): number | undefined {
    const m = /^([^/]+)\/(\d+)$/.exec(cidr);
    if (!m || Number(m[2]) !== this.maskSize) return undefined;
    const ip = parseIPv4(m[1]!);
    if (
      ip === undefined ||
      !cidrContains(this.cluster, ip) ||
      (ip - this.cluster.network) % this.step !== 0
    ) {
      return undefined;
    }
    return (ip - this.cluster.network) / this.step;
  }

  /** The next free subnet, in order as cidrset.AllocateNext hands them out; undefined when full. */
  allocateNext(): string | undefined {
    const n = this.used.size;
    for (let k = 0; k < n; k++) {
      const i = (this.next + k) % n;
      if (this.used.allocate(i)) {
        this.next = (i + 1) % n;
        return `${formatIPv4(this.cluster.network + i * this.step)}/${this.maskSize}`;
      }
    }
    return undefined;
  }

  /** Marks a subnet a node already holds; false if it is not one of ours. */
  occupy(cidr: string): boolean {
    const i = this.indexOf(cidr);
    if (i === undefined) return false;
    this.used.allocate(i);
    return true;
  }

  release(cidr: string): void {
    const i = this.indexOf(cidr);
    if (i !== undefined) this.used.release(i);
  }
}
