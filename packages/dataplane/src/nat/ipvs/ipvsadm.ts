import { IpvsTable, type IpvsService } from "./table.ts";

// `ipvsadm -Ln [--stats]` output, in ipvsadm 1.31's layout (services and real servers sorted by
// address, as ipvsadm sorts them before printing).

/** The kernel reports the connection hash table size; 4096 is CONFIG_IP_VS_TAB_BITS=12. */
export const IPVS_VERSION_LINE = "IP Virtual Server version 1.2.1 (size=4096)";

export interface IpvsadmOptions {
  stats?: boolean;
  /** -t/-u address:port: only this virtual server */
  service?: { protocol: "TCP" | "UDP" | "SCTP"; address: string; port: number };
  /** --exact: numbers without K/M/G scaling (only with --stats) */
  exact?: boolean;
}

const compare = (a: IpvsService, b: IpvsService) =>
  a.protocol.localeCompare(b.protocol) || a.addr - b.addr || a.port - b.port;

/** ipvsadm's print_largenum: nine columns, scaled to K/M/G beyond 8 digits unless --exact. */
function largenum(n: number, exact = false): string {
  if (exact || n < 100_000_000) return String(n).padStart(9);
  if (n < 1_000_000_000) return `${Math.floor(n / 1000)}K`.padStart(9);
  if (n < 1_000_000_000_000) return `${Math.floor(n / 1_000_000)}M`.padStart(9);
  return `${Math.floor(n / 1_000_000_000)}G`.padStart(9);
}

function serviceLine(s: IpvsService): string {
  let line = `${s.protocol}  ${s.address}:${s.port} ${s.schedulerName}`;
  if (s.flags.length) line += ` (${s.flags.join(",")})`;
  if (s.persistentTimeout) line += ` persistent ${s.persistentTimeout}`;
  return line;
}

export function ipvsadmList(table: IpvsTable, options: IpvsadmOptions = {}): string {
  const out = [IPVS_VERSION_LINE];
  if (options.stats) {
    out.push(
      "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes",
      "  -> RemoteAddress:Port",
    );
  } else {
    out.push(
      "Prot LocalAddress:Port Scheduler Flags",
      "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
    );
  }
  const wanted = options.service;
  const services = table
    .list()
    .filter(
      (s) =>
        !wanted || (s.protocol === wanted.protocol && s.address === wanted.address && s.port === wanted.port),
    )
    .sort(compare);
  for (const s of services) {
    const dests = [...s.dests].sort((a, b) => a.addr - b.addr || a.port - b.port);
    if (options.stats) {
      const n = (v: number) => largenum(v, options.exact);
      out.push(
        `${`${s.protocol}  ${s.address}:${s.port}`.padEnd(33)}${n(s.conns)}${n(s.inPkts)}${n(s.outPkts)}${n(s.inBytes)}${n(s.outBytes)}`,
      );
      for (const d of dests) {
        out.push(
          `  -> ${`${d.address}:${d.port}`.padEnd(28)}${n(d.conns)}${n(d.inPkts)}${n(d.outPkts)}${n(d.inBytes)}${n(d.outBytes)}`,
        );
      }
    } else {
      out.push(serviceLine(s));
      for (const d of dests) {
        out.push(
          `  -> ${`${d.address}:${d.port}`.padEnd(28)} ${"Masq".padEnd(7)} ${String(d.weight).padEnd(6)} ${String(d.activeConns).padEnd(10)} ${String(d.inactConns).padEnd(10)}`.trimEnd(),
        );
      }
    }
  }
  return out.join("\n") + "\n";
}
