/**
 * Server block keys: `[dns://]ZONE[:PORT]`, CIDR reverse zones (`10.0.0.0/24`, `fd00::/64`).
 */
import { isIP } from "node:net";

export interface ZoneAddress {
  zone: string;
  /** undefined: the default port (53, or -dns.port). */
  port?: number;
}

export class KeyError extends Error {}

export function parseKey(key: string): ZoneAddress[] {
  let rest = key;
  const scheme = /^([a-z0-9]+):\/\//i.exec(rest);
  if (scheme) {
    if (scheme[1]!.toLowerCase() !== "dns") {
      throw new KeyError(
        `unsupported scheme '${scheme[1]}://' in '${key}': klab serves dns:// (UDP and TCP) only`,
      );
    }
    rest = rest.slice(scheme[0].length);
  }
  let port: number | undefined;
  const cidr = /^(.+\/\d+)(?::(\d+))?$/.exec(rest);
  let host: string;
  if (cidr) {
    host = cidr[1]!;
    if (cidr[2] !== undefined) port = Number(cidr[2]);
  } else {
    const m = /^(.*?)(?::(\d*))?$/.exec(rest)!;
    host = m[1]!;
    if (m[2] !== undefined) {
      if (m[2] === "") throw new KeyError(`invalid port in '${key}'`);
      port = Number(m[2]);
    }
    if (host === "") host = ".";
  }
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    throw new KeyError(`invalid port in '${key}'`);
  }
  if (host.includes("/")) return reverseZones(host, key).map((zone) => ({ zone, port }));
  return [{ zone: fqdn(host), port }];
}

export function fqdn(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith(".") ? lower : `${lower}.`;
}

/** The reverse zone(s) for a CIDR: octet (IPv4) or nibble (IPv6) aligned, widened when not. */
export function reverseZones(cidr: string, key = cidr): string[] {
  const [ip, bitsText] = cidr.split("/") as [string, string];
  const bits = Number(bitsText);
  const family = isIP(ip);
  if (family === 4) {
    if (!(bits >= 0 && bits <= 32)) throw new KeyError(`invalid CIDR '${key}'`);
    const octets = ip.split(".").map(Number);
    const whole = Math.floor(bits / 8);
    const labels = octets.slice(0, whole).reverse();
    return [`${[...labels, "in-addr", "arpa"].join(".")}.`];
  }
  if (family === 6) {
    if (!(bits >= 0 && bits <= 128)) throw new KeyError(`invalid CIDR '${key}'`);
    const nibbles = expandIPv6(ip).replace(/:/g, "").split("");
    const whole = Math.floor(bits / 4);
    return [`${[...nibbles.slice(0, whole).reverse(), "ip6", "arpa"].join(".")}.`];
  }
  throw new KeyError(`invalid CIDR '${key}'`);
}

export function expandIPv6(ip: string): string {
  let text = ip;
  if (text.includes(".")) {
    // IPv4-mapped tail
    const idx = text.lastIndexOf(":");
    const v4 = text
      .slice(idx + 1)
      .split(".")
      .map(Number);
    text = `${text.slice(0, idx)}:${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail !== "" ? tail.split(":") : [];
  const fill = tail !== undefined ? Array(8 - h.length - t.length).fill("0") : [];
  return [...h, ...fill, ...t].map((g) => g.padStart(4, "0")).join(":");
}
