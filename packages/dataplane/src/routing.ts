/**
 * The node's routing table, longest prefix first, as `ip route` would hold it:
 *   - a local pod's IP (/32)              → that pod's TUN
 *   - another node's podCIDR              → the overlay, to that node's IP
 *   - the node's own addresses (/32)      → local: answered by the dataplane or the node's kernel
 *   - everything else (default)           → the node's network namespace (the kernel, via lab0)
 */
import { cidrToString, ipToString, maskOf, parseCIDR, type Cidr } from "./ip.ts";

export type RouteTarget =
  | { kind: "pod"; podIP: number }
  | { kind: "overlay"; nodeIP: number }
  | { kind: "local" }
  | { kind: "host" }
  | { kind: "blackhole" };

export interface Route {
  dst: Cidr;
  target: RouteTarget;
}

export class RouteTable {
  // One map per prefix length: lookups try /32 down to /0, so the first hit is the longest.
  private readonly byLength: (Map<number, Route> | undefined)[] = new Array(33);
  private lengths: number[] = [];

  add(dst: Cidr | string, target: RouteTarget): void {
    const cidr = typeof dst === "string" ? parseCIDR(dst) : dst;
    let m = this.byLength[cidr.prefix];
    if (!m) {
      m = new Map();
      this.byLength[cidr.prefix] = m;
      this.lengths = this.byLength.flatMap((x, len) => (x ? [len] : [])).reverse();
    }
    m.set(cidr.network, { dst: cidr, target });
  }

  delete(dst: Cidr | string): boolean {
    const cidr = typeof dst === "string" ? parseCIDR(dst) : dst;
    return this.byLength[cidr.prefix]?.delete(cidr.network) ?? false;
  }

  lookup(addr: number): Route | undefined {
    for (const len of this.lengths) {
      const route = this.byLength[len]!.get((addr & maskOf(len)) >>> 0);
      if (route) return route;
    }
    return undefined;
  }

  /** `ip route`-like listing, longest prefixes first. */
  list(): Route[] {
    return this.lengths.flatMap((len) => [...this.byLength[len]!.values()]);
  }

  format(): string {
    return this.list()
      .map((r) => {
        const t = r.target;
        const via =
          t.kind === "pod"
            ? `dev pod ${ipToString(t.podIP)}`
            : t.kind === "overlay"
              ? `via ${ipToString(t.nodeIP)} dev vxlan`
              : t.kind === "local"
                ? "local"
                : t.kind === "host"
                  ? "dev lab0"
                  : "blackhole";
        return `${r.dst.prefix === 0 ? "default" : cidrToString(r.dst)} ${via}`;
      })
      .join("\n");
  }
}
