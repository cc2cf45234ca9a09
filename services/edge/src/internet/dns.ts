/**
 * The emulated internet's DNS: an authoritative server for example.com at 203.0.113.53, run as
 * klab's CoreDNS with a `hosts` block, so what pods reach through `forward . /etc/resolv.conf`
 * is a real DNS server over real packets.
 */
export interface InternetZone {
  /** name → IPv4 address */
  records: Record<string, string>;
  bind: string;
}

export const defaultZone: InternetZone = {
  bind: "203.0.113.53",
  records: {
    "example.com": "203.0.113.10",
    "www.example.com": "203.0.113.10",
    "api.example.com": "203.0.113.10",
    "database.example.com": "203.0.113.20",
  },
};

export function internetCorefile(zone: InternetZone): string {
  const hosts = Object.entries(zone.records)
    .map(([name, ip]) => `        ${ip} ${name}`)
    .join("\n");
  return `example.com:53 {
    bind ${zone.bind}
    hosts {
${hosts}
    }
    log
    errors
}
`;
}
