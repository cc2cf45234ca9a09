/**
 * LoadBalancer IP assignment, as a cloud controller does it: every Service of type LoadBalancer
 * gets one address from the pool (its spec.loadBalancerIP if that is in the pool and free), and
 * keeps it for as long as it stays a LoadBalancer. A pure function of the Services.
 */
import type { Service } from "@klab/api";

export interface AddressPool {
  first: number;
  last: number;
}

export function ipToNumber(ip: string): number {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`"${ip}" is not an IPv4 address`);
  }
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function numberToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** Parses "172.29.255.200-172.29.255.250" (or a single address). */
export function parsePool(text: string): AddressPool {
  const [a, b = a] = text.split("-").map((s) => s.trim());
  const first = ipToNumber(a!);
  const last = ipToNumber(b!);
  if (last < first) throw new Error(`pool "${text}": the last address comes before the first`);
  return { first, last };
}

export function inPool(pool: AddressPool, ip: string): boolean {
  try {
    const n = ipToNumber(ip);
    return n >= pool.first && n <= pool.last;
  } catch {
    return false;
  }
}

export const serviceKey = (s: Service) => `${s.metadata.namespace}/${s.metadata.name}`;

export interface Assignment {
  /** Service key → its address; a Service absent here gets none (pool exhausted). */
  addresses: Map<string, string>;
  /** Service keys that wanted an address and got none, with the reason. */
  pending: Map<string, string>;
}

/**
 * Decides every LoadBalancer Service's address. Services keep what their status already shows;
 * older Services are served first so a full pool never takes an address from an existing one.
 */
export function assignAddresses(services: Service[], pool: AddressPool): Assignment {
  const lbs = services
    .filter((s) => s.spec?.type === "LoadBalancer")
    .sort(
      (a, b) =>
        (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? "") ||
        serviceKey(a).localeCompare(serviceKey(b)),
    );
  const taken = new Set<string>();
  const addresses = new Map<string, string>();
  const pending = new Map<string, string>();
  const want = new Map<string, string | undefined>();
  for (const s of lbs) {
    const current = s.status?.loadBalancer?.ingress?.[0]?.ip;
    const requested = s.spec?.loadBalancerIP;
    if (requested && !inPool(pool, requested)) {
      pending.set(
        serviceKey(s),
        `spec.loadBalancerIP ${requested} is not in the pool ${numberToIp(pool.first)}-${numberToIp(pool.last)}`,
      );
      continue;
    }
    want.set(serviceKey(s), requested || (current && inPool(pool, current) ? current : undefined));
  }
  // First those that asked for (or already hold) a specific address, then the rest in order.
  for (const s of lbs) {
    const key = serviceKey(s);
    const ip = want.get(key);
    if (!ip) continue;
    if (taken.has(ip)) {
      pending.set(key, `address ${ip} is already assigned to another Service`);
      continue;
    }
    taken.add(ip);
    addresses.set(key, ip);
  }
  let next = pool.first;
  for (const s of lbs) {
    const key = serviceKey(s);
    if (!want.has(key) || addresses.has(key) || pending.has(key)) continue;
    while (next <= pool.last && taken.has(numberToIp(next))) next++;
    if (next > pool.last) {
      pending.set(key, "no addresses left in the LoadBalancer pool");
      continue;
    }
    const ip = numberToIp(next++);
    taken.add(ip);
    addresses.set(key, ip);
  }
  return { addresses, pending };
}
