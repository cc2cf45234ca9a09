/**
 * host-local style IPAM over the node's podCIDR: .1 is the gateway, allocation is sequential
 * after the last handed-out address (as host-local does, so a freed IP is not reused at once).
 * The state is plain data so the shell can persist it and a restarted agent keeps every IP.
 */
export interface IPAMState {
  cidr: string;
  /** ip -> pod key (namespace/name/uid) */
  allocated: Record<string, string>;
  lastReserved?: string;
}

export class IPAMError extends Error {
  constructor(
    readonly code: "Exhausted" | "BadCIDR",
    message: string,
  ) {
    super(message);
  }
}

export function ipToInt(ip: string): number {
  const parts = ip.split(".");
  if (parts.length !== 4) throw new IPAMError("BadCIDR", `not an IPv4 address: ${ip}`);
  let n = 0;
  for (const p of parts) {
    const v = Number(p);
    if (!/^\d{1,3}$/.test(p) || v > 255) throw new IPAMError("BadCIDR", `not an IPv4 address: ${ip}`);
    n = n * 256 + v;
  }
  return n;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

export function parseCIDR(cidr: string): { network: number; prefix: number } {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(cidr);
  if (!m || Number(m[2]) > 30)
    throw new IPAMError("BadCIDR", `podCIDR ${JSON.stringify(cidr)} is not an IPv4 CIDR of /30 or larger`);
  const prefix = Number(m[2]);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { network: (ipToInt(m[1]) & mask) >>> 0, prefix };
}

/** The gateway of a podCIDR: its first usable address, held by the node's bridge/dataplane. */
export function gatewayOf(cidr: string): string {
  return intToIp(parseCIDR(cidr).network + 1);
}

export function newIPAM(cidr: string): IPAMState {
  parseCIDR(cidr);
  return { cidr, allocated: {} };
}

/** Returns the pod's IP: the one it already holds, or the next free one after lastReserved. */
export function allocate(state: IPAMState, owner: string): { state: IPAMState; ip: string } {
  for (const [ip, o] of Object.entries(state.allocated)) if (o === owner) return { state, ip };
  const { network, prefix } = parseCIDR(state.cidr);
  const size = 2 ** (32 - prefix);
  const first = network + 2; // .0 network, .1 gateway
  const last = network + size - 2; // broadcast excluded
  const count = last - first + 1;
  const start = state.lastReserved ? ipToInt(state.lastReserved) + 1 : first;
  for (let i = 0; i < count; i++) {
    let cand = start + i;
    if (cand > last || cand < first) cand = first + ((((cand - first) % count) + count) % count);
    const ip = intToIp(cand);
    if (!(ip in state.allocated)) {
      return { state: { ...state, allocated: { ...state.allocated, [ip]: owner }, lastReserved: ip }, ip };
    }
  }
  throw new IPAMError("Exhausted", `no free IP left in podCIDR ${state.cidr} (${count} addresses in use)`);
}

export function release(state: IPAMState, owner: string): IPAMState {
  const allocated = Object.fromEntries(Object.entries(state.allocated).filter(([, o]) => o !== owner));
  return { ...state, allocated };
}
