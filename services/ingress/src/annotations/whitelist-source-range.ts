/**
 * whitelist-source-range (allowlist-source-range in newer releases): comma-separated CIDRs rendered
 * by ingress-nginx as `allow …; deny all;`. A client outside them gets 403.
 */
import { BlockList, isIPv4, isIPv6 } from "node:net";
import { type AnnotationMap, AnnotationError, get } from "./common.ts";

export interface SourceRange {
  cidrs: string[];
  list: BlockList;
}

export function parseCidrs(value: string, annotation = "whitelist-source-range"): SourceRange {
  const list = new BlockList();
  const cidrs: string[] = [];
  for (const raw of value.split(",")) {
    const item = raw.trim();
    if (item === "") continue;
    const [addr, bits, extra] = item.split("/");
    const type = isIPv4(addr) ? "ipv4" : isIPv6(addr) ? "ipv6" : undefined;
    const max = type === "ipv4" ? 32 : 128;
    if (
      !type ||
      extra !== undefined ||
      (bits !== undefined && !/^\d+$/.test(bits)) ||
      Number(bits ?? max) > max
    )
      throw new AnnotationError(annotation, `'${item}' is not an IP address or CIDR`);
    list.addSubnet(addr, Number(bits ?? max), type);
    cidrs.push(item);
  }
  return { cidrs, list };
}

export function parse(a: AnnotationMap): SourceRange | undefined {
  const v = get(a, "whitelist-source-range") ?? get(a, "allowlist-source-range");
  if (v === undefined || v === "") return undefined;
  return parseCidrs(v);
}

/** Node reports IPv4 clients of a dual-stack socket as ::ffff:a.b.c.d; nginx sees a.b.c.d. */
export function plainAddress(addr: string): string {
  return addr.startsWith("::ffff:") && isIPv4(addr.slice(7)) ? addr.slice(7) : addr;
}

export function allows(range: SourceRange, remoteAddr: string): boolean {
  const addr = plainAddress(remoteAddr);
  if (isIPv4(addr)) return range.list.check(addr, "ipv4");
  if (isIPv6(addr)) return range.list.check(addr, "ipv6");
  return false;
}
