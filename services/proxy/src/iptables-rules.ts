import type { EndpointSlice, Node, Service } from "@klab/api";
import {
  buildServicePorts,
  categorizeEndpoints,
  externallyAccessible,
  nodeInfo,
  usesClusterEndpoints,
  usesLocalEndpoints,
  type EndpointInfo,
  type NodeInfo,
  type ServicePortInfo,
} from "./service-ports.ts";

// kube-proxy's syncProxyRules for iptables mode as a pure function: the whole desired ruleset,
// as the text kube-proxy hands to `iptables-restore --noflush`.

export interface IptablesProxyConfig {
  /** detectLocalMode ClusterCIDR: traffic from outside it to a cluster IP is masqueraded. */
  clusterCIDR?: string;
  masqueradeAll?: boolean;
  /** 2^masqueradeBit is the mark; kube-proxy's default is 14 → 0x4000. */
  masqueradeBit?: number;
  /** --iptables-localhost-nodeports (default true). */
  localhostNodePorts?: boolean;
  /** --nodeport-addresses CIDRs; empty means every local address. */
  nodePortAddresses?: string[];
  /** Whether the iptables binary supports MASQUERADE --random-fully (any iptables >= 1.6.2). */
  randomFully?: boolean;
  /** Whether the nfacct counters kube-proxy creates exist on the node. */
  nfacct?: boolean;
  /** nf_conntrack_tcp_be_liberal != 0 makes kube-proxy omit its INVALID drop rule. */
  conntrackTCPLiberal?: boolean;
  /** Above this many endpoints the per-endpoint comments are left out (kube-proxy: 1000). */
  largeClusterEndpointsThreshold?: number;
  /** nat chains present on the node now; service chains among them that are no longer used get deleted. */
  existingNatChains?: Iterable<string>;
}

export interface IptablesRuleset {
  text: string;
  filterRules: number;
  natRules: number;
  activeNatChains: Set<string>;
  servicePorts: ServicePortInfo[];
  /** services with ITP/ETP Local and no local endpoints (sync_proxy_rules_no_local_endpoints_total) */
  noLocalEndpointsInternal: number;
  noLocalEndpointsExternal: number;
}

const SERVICE_CHAIN_PREFIXES = ["KUBE-SVC-", "KUBE-SVL-", "KUBE-SEP-", "KUBE-FW-", "KUBE-EXT-"];

export function masqueradeMark(bit = 14): string {
  return "0x" + (1 << bit).toString(16).padStart(4, "0");
}

/** kube-proxy writes 1/n with ten decimals: `%0.10f`. */
export function computeProbability(n: number): string {
  return (1 / n).toFixed(10);
}

/** Rules grouped by chain in declaration order, the way iptables-save (and kube-proxy's tests) show them. */
class TableWriter {
  private readonly chains = new Map<string, string[]>();
  private readonly trailer: string[] = [];
  lines = 0;

  constructor(
    readonly table: string,
    private readonly fixedChains: string[],
  ) {
    for (const c of fixedChains) this.chains.set(c, []);
  }
  declare(chain: string): void {
    if (!this.chains.has(chain)) this.chains.set(chain, []);
  }
  rule(chain: string, ...args: string[]): void {
    this.declare(chain);
    (this.chains.get(chain) as string[]).push(["-A", chain, ...args].join(" "));
    this.lines++;
  }
  deleteChain(chain: string): void {
    this.declare(chain);
    this.trailer.push(`-X ${chain}`);
  }
  render(): string {
    const fixed = this.fixedChains;
    const rest = [...this.chains.keys()].filter((c) => !fixed.includes(c)).sort();
    const order = [...fixed.slice(0, 2), ...[...fixed.slice(2), ...rest].sort()];
    const out = [`*${this.table}`];
    for (const c of order) out.push(`:${c} - [0:0]`);
    for (const c of order) out.push(...(this.chains.get(c) as string[]));
    out.push(...this.trailer, "COMMIT");
    return out.join("\n") + "\n";
  }
}

const q = (s: string) => `"${s}"`;

export function buildIptablesRuleset(
  services: Service[],
  endpointSlices: EndpointSlice[],
  node: Node | NodeInfo | string,
  config: IptablesProxyConfig = {},
): IptablesRuleset {
  const n = nodeInfo(node);
  const servicePorts = buildServicePorts(services, endpointSlices, n);
  const mark = masqueradeMark(config.masqueradeBit ?? 14);
  const localhostNodePorts = config.localhostNodePorts ?? true;
  const nfacct = config.nfacct ?? true;
  const ifNotLocal = config.clusterCIDR ? ["!", "-s", config.clusterCIDR] : undefined;
  const ifLocal = config.clusterCIDR ? ["-s", config.clusterCIDR] : undefined;

  // Top-level chains come first in kube-proxy's (sorted) output; the rest follow alphabetically.
  const filter = new TableWriter("filter", [
    "KUBE-NODEPORTS",
    "KUBE-SERVICES",
    "KUBE-EXTERNAL-SERVICES",
    "KUBE-FORWARD",
    "KUBE-PROXY-FIREWALL",
  ]);
  const nat = new TableWriter("nat", [
    "KUBE-NODEPORTS",
    "KUBE-SERVICES",
    "KUBE-MARK-MASQ",
    "KUBE-POSTROUTING",
  ]);

  nat.rule("KUBE-POSTROUTING", "-m", "mark", "!", "--mark", `${mark}/${mark}`, "-j", "RETURN");
  nat.rule("KUBE-POSTROUTING", "-j", "MARK", "--xor-mark", mark);
  nat.rule(
    "KUBE-POSTROUTING",
    "-m comment --comment",
    q("kubernetes service traffic requiring SNAT"),
    "-j MASQUERADE",
    ...((config.randomFully ?? true) ? ["--random-fully"] : []),
  );
  nat.rule("KUBE-MARK-MASQ", "-j", "MARK", "--or-mark", mark);

  if (localhostNodePorts) {
    // The route_localnet hole (kubernetes#90259) is closed by this rule; kubelet writes the same one.
    filter.rule(
      "KUBE-FIREWALL",
      "-m comment --comment",
      q("block incoming localnet connections"),
      "-d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
    );
  }

  const activeNatChains = new Set<string>();
  const totalEndpoints = servicePorts.reduce((acc, s) => acc + s.endpoints.length, 0);
  const largeClusterMode = totalEndpoints > (config.largeClusterEndpointsThreshold ?? 1000);
  const withComment = (comment: string): string[] =>
    largeClusterMode ? [] : ["-m comment --comment", comment];
  let noLocalInternal = 0;
  let noLocalExternal = 0;

  for (const svc of servicePorts) {
    const protocol = svc.protocol.toLowerCase();
    const spn = svc.nameString;
    const proto = `-m ${protocol} -p ${protocol}`;
    const { clusterEndpoints, localEndpoints, allReachableEndpoints, hasAnyEndpoints } =
      categorizeEndpoints(svc);
    const hasEndpoints = hasAnyEndpoints;
    const clusterPolicyChain = svc.clusterPolicyChainName;
    const localPolicyChain = svc.localPolicyChainName;
    const usesClusterPolicyChain = clusterEndpoints.length > 0 && usesClusterEndpoints(svc);
    const usesLocalPolicyChain = localEndpoints.length > 0 && usesLocalEndpoints(svc);

    let internalTrafficChain = clusterPolicyChain;
    let hasInternalEndpoints = hasEndpoints;
    if (svc.internalPolicyLocal) {
      internalTrafficChain = localPolicyChain;
      if (localEndpoints.length === 0) hasInternalEndpoints = false;
    }
    let externalPolicyChain = clusterPolicyChain;
    let hasExternalEndpoints = hasEndpoints;
    if (svc.externalPolicyLocal) {
      externalPolicyChain = localPolicyChain;
      if (localEndpoints.length === 0) hasExternalEndpoints = false;
    }
    const externalTrafficChain = svc.externalChainName;
    const usesExternalTrafficChain = hasEndpoints && externallyAccessible(svc);
    const usesFWChain =
      hasEndpoints && svc.loadBalancerVIPs.length > 0 && svc.loadBalancerSourceRanges.length > 0;
    const loadBalancerTrafficChain = usesFWChain ? svc.firewallChainName : externalTrafficChain;

    let internalFilterTarget = "";
    let internalFilterComment = "";
    let externalFilterTarget = "";
    let externalFilterComment = "";
    if (!hasEndpoints) {
      internalFilterTarget = externalFilterTarget = "REJECT";
      internalFilterComment = externalFilterComment = q(`${spn} has no endpoints`);
    } else {
      if (!hasInternalEndpoints) {
        internalFilterTarget = "DROP";
        internalFilterComment = q(`${spn} has no local endpoints`);
        noLocalInternal++;
      }
      if (!hasExternalEndpoints) {
        externalFilterTarget = "DROP";
        externalFilterComment = q(`${spn} has no local endpoints`);
        noLocalExternal++;
      }
    }

    const dport = `--dport ${svc.port}`;
    if (hasInternalEndpoints) {
      nat.rule(
        "KUBE-SERVICES",
        "-m comment --comment",
        q(`${spn} cluster IP`),
        proto,
        "-d",
        svc.clusterIP,
        dport,
        "-j",
        internalTrafficChain,
      );
    } else {
      filter.rule(
        "KUBE-SERVICES",
        "-m comment --comment",
        internalFilterComment,
        proto,
        "-d",
        svc.clusterIP,
        dport,
        "-j",
        internalFilterTarget,
      );
    }

    for (const ip of svc.externalIPs) {
      if (hasEndpoints) {
        nat.rule(
          "KUBE-SERVICES",
          "-m comment --comment",
          q(`${spn} external IP`),
          proto,
          "-d",
          ip,
          dport,
          "-j",
          externalTrafficChain,
        );
      }
      if (!hasExternalEndpoints) {
        filter.rule(
          "KUBE-EXTERNAL-SERVICES",
          "-m comment --comment",
          externalFilterComment,
          proto,
          "-d",
          ip,
          dport,
          "-j",
          externalFilterTarget,
        );
      }
    }

    for (const lbip of svc.loadBalancerVIPs) {
      if (hasEndpoints) {
        nat.rule(
          "KUBE-SERVICES",
          "-m comment --comment",
          q(`${spn} loadbalancer IP`),
          proto,
          "-d",
          lbip,
          dport,
          "-j",
          loadBalancerTrafficChain,
        );
      }
      if (usesFWChain) {
        filter.rule(
          "KUBE-PROXY-FIREWALL",
          "-m comment --comment",
          q(`${spn} traffic not accepted by ${svc.firewallChainName}`),
          proto,
          "-d",
          lbip,
          dport,
          "-j DROP",
        );
      }
    }
    if (!hasExternalEndpoints) {
      for (const lbip of svc.loadBalancerVIPs) {
        filter.rule(
          "KUBE-EXTERNAL-SERVICES",
          "-m comment --comment",
          externalFilterComment,
          proto,
          "-d",
          lbip,
          dport,
          "-j",
          externalFilterTarget,
        );
      }
    }

    if (svc.nodePort !== 0) {
      const nodePort = `--dport ${svc.nodePort}`;
      if (hasEndpoints) {
        if (localhostNodePorts && nfacct) {
          nat.rule(
            "KUBE-NODEPORTS",
            "-m comment --comment",
            spn,
            proto,
            "-d 127.0.0.0/8",
            nodePort,
            "-m nfacct --nfacct-name localhost_nps_accepted_pkts",
            "-j",
            externalTrafficChain,
          );
        }
        nat.rule("KUBE-NODEPORTS", "-m comment --comment", spn, proto, nodePort, "-j", externalTrafficChain);
      }
      if (!hasExternalEndpoints) {
        filter.rule(
          "KUBE-EXTERNAL-SERVICES",
          "-m comment --comment",
          externalFilterComment,
          "-m addrtype --dst-type LOCAL",
          proto,
          nodePort,
          "-j",
          externalFilterTarget,
        );
      }
    }

    if (svc.healthCheckNodePort !== 0) {
      filter.rule(
        "KUBE-NODEPORTS",
        "-m comment --comment",
        q(`${spn} health check node port`),
        "-m tcp -p tcp",
        `--dport ${svc.healthCheckNodePort}`,
        "-j ACCEPT",
      );
    }

    if (hasInternalEndpoints) {
      const args = ["-m comment --comment", q(`${spn} cluster IP`), proto, "-d", svc.clusterIP, dport];
      if (config.masqueradeAll) nat.rule(internalTrafficChain, ...args, "-j KUBE-MARK-MASQ");
      else if (ifNotLocal) nat.rule(internalTrafficChain, ...args, ...ifNotLocal, "-j KUBE-MARK-MASQ");
    }

    if (usesExternalTrafficChain) {
      nat.declare(externalTrafficChain);
      activeNatChains.add(externalTrafficChain);
      if (!svc.externalPolicyLocal) {
        nat.rule(
          externalTrafficChain,
          "-m comment --comment",
          q(`masquerade traffic for ${spn} external destinations`),
          "-j KUBE-MARK-MASQ",
        );
      } else {
        if (ifLocal) {
          nat.rule(
            externalTrafficChain,
            "-m comment --comment",
            q(`pod traffic for ${spn} external destinations`),
            ...ifLocal,
            "-j",
            clusterPolicyChain,
          );
        }
        nat.rule(
          externalTrafficChain,
          "-m comment --comment",
          q(`masquerade LOCAL traffic for ${spn} external destinations`),
          "-m addrtype --src-type LOCAL -j KUBE-MARK-MASQ",
        );
        nat.rule(
          externalTrafficChain,
          "-m comment --comment",
          q(`route LOCAL traffic for ${spn} external destinations`),
          "-m addrtype --src-type LOCAL -j",
          clusterPolicyChain,
        );
      }
      if (hasExternalEndpoints) nat.rule(externalTrafficChain, "-j", externalPolicyChain);
    }

    if (usesFWChain) {
      const fw = svc.firewallChainName;
      nat.declare(fw);
      activeNatChains.add(fw);
      const args = ["-m comment --comment", q(`${spn} loadbalancer IP`)];
      let allowFromNode = false;
      for (const cidr of svc.loadBalancerSourceRanges) {
        nat.rule(fw, ...args, "-s", cidr, "-j", externalTrafficChain);
        if (n.ips.some((ip) => cidrContains(cidr, ip))) allowFromNode = true;
      }
      if (allowFromNode) {
        for (const lbip of svc.loadBalancerVIPs)
          nat.rule(fw, ...args, "-s", lbip, "-j", externalTrafficChain);
      }
      nat.rule(
        fw,
        "-m comment --comment",
        q(`other traffic to ${spn} will be dropped by KUBE-PROXY-FIREWALL`),
      );
    }

    const writeServiceToEndpointRules = (chain: string, endpoints: EndpointInfo[]) => {
      if (svc.stickyMaxAgeSeconds > 0) {
        for (const ep of endpoints) {
          nat.rule(
            chain,
            ...withComment(q(`${spn} -> ${ep.endpoint}`)),
            "-m recent --name",
            ep.chainName,
            `--rcheck --seconds ${svc.stickyMaxAgeSeconds} --reap -j`,
            ep.chainName,
          );
        }
      }
      endpoints.forEach((ep, i) => {
        const statistic =
          i < endpoints.length - 1
            ? ["-m statistic --mode random --probability", computeProbability(endpoints.length - i)]
            : [];
        nat.rule(chain, ...withComment(q(`${spn} -> ${ep.endpoint}`)), ...statistic, "-j", ep.chainName);
      });
    };

    if (usesClusterPolicyChain) {
      nat.declare(clusterPolicyChain);
      activeNatChains.add(clusterPolicyChain);
      writeServiceToEndpointRules(clusterPolicyChain, clusterEndpoints);
    }
    if (usesLocalPolicyChain) {
      nat.declare(localPolicyChain);
      activeNatChains.add(localPolicyChain);
      writeServiceToEndpointRules(localPolicyChain, localEndpoints);
    }

    for (const ep of allReachableEndpoints) {
      nat.declare(ep.chainName);
      activeNatChains.add(ep.chainName);
      const args = withComment(spn);
      nat.rule(ep.chainName, ...args, "-s", ep.ip, "-j KUBE-MARK-MASQ");
      const affinity = svc.stickyMaxAgeSeconds > 0 ? ["-m recent --name", ep.chainName, "--set"] : [];
      nat.rule(ep.chainName, ...args, ...affinity, proto, "-j DNAT --to-destination", ep.endpoint);
    }
  }

  for (const chain of config.existingNatChains ?? []) {
    if (activeNatChains.has(chain) || !SERVICE_CHAIN_PREFIXES.some((p) => chain.startsWith(p))) continue;
    nat.deleteChain(chain);
  }

  const nodePortsComment = q("kubernetes service nodeports; NOTE: this must be the last rule in this chain");
  const nodePortAddresses = config.nodePortAddresses ?? [];
  if (nodePortAddresses.length === 0) {
    nat.rule(
      "KUBE-SERVICES",
      "-m comment --comment",
      nodePortsComment,
      "-m addrtype --dst-type LOCAL",
      ...(localhostNodePorts ? [] : ["! -d 127.0.0.0/8"]),
      "-j KUBE-NODEPORTS",
    );
  } else {
    const candidates = [...n.ips, ...(localhostNodePorts ? ["127.0.0.1"] : [])];
    for (const ip of candidates) {
      if (!nodePortAddresses.some((c) => cidrContains(c, ip))) continue;
      nat.rule("KUBE-SERVICES", "-m comment --comment", nodePortsComment, "-d", ip, "-j KUBE-NODEPORTS");
    }
  }

  if (!config.conntrackTCPLiberal) {
    filter.rule(
      "KUBE-FORWARD",
      "-m conntrack --ctstate INVALID",
      ...(nfacct ? ["-m nfacct --nfacct-name ct_state_invalid_dropped_pkts"] : []),
      "-j DROP",
    );
  }
  filter.rule(
    "KUBE-FORWARD",
    "-m comment --comment",
    q("kubernetes forwarding rules"),
    "-m mark --mark",
    `${mark}/${mark}`,
    "-j ACCEPT",
  );
  filter.rule(
    "KUBE-FORWARD",
    "-m comment --comment",
    q("kubernetes forwarding conntrack rule"),
    "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
  );

  return {
    text: filter.render() + nat.render(),
    filterRules: filter.lines,
    natRules: nat.lines,
    activeNatChains,
    servicePorts,
    noLocalEndpointsInternal: noLocalInternal,
    noLocalEndpointsExternal: noLocalExternal,
  };
}

/** The `iptables-restore` input kube-proxy writes for this state. */
export function buildIptablesRules(
  services: Service[],
  endpointSlices: EndpointSlice[],
  node: Node | NodeInfo | string,
  config: IptablesProxyConfig = {},
): string {
  return buildIptablesRuleset(services, endpointSlices, node, config).text;
}

export interface JumpRule {
  table: "filter" | "nat";
  chain: string;
  /** rule arguments after the chain name, as `iptables -I <chain>` takes them */
  rule: string;
}

/**
 * The jumps from the built-in chains that kube-proxy (and kubelet, for KUBE-FIREWALL) ensure with
 * `iptables -I`, in the order they are ensured; each one is prepended, so the last one ends up first.
 */
export function iptablesJumpRules(config: IptablesProxyConfig = {}): JumpRule[] {
  const ctNew = "-m conntrack --ctstate NEW ";
  const j = (
    table: JumpRule["table"],
    chain: string,
    extra: string,
    comment: string,
    dst: string,
  ): JumpRule => ({
    table,
    chain,
    rule: `${extra}${comment ? `-m comment --comment "${comment}" ` : ""}-j ${dst}`,
  });
  const rules = [
    j("filter", "INPUT", ctNew, "kubernetes externally-visible service portals", "KUBE-EXTERNAL-SERVICES"),
    j("filter", "FORWARD", ctNew, "kubernetes externally-visible service portals", "KUBE-EXTERNAL-SERVICES"),
    j("filter", "INPUT", "", "kubernetes health check service ports", "KUBE-NODEPORTS"),
    j("filter", "FORWARD", ctNew, "kubernetes service portals", "KUBE-SERVICES"),
    j("filter", "OUTPUT", ctNew, "kubernetes service portals", "KUBE-SERVICES"),
    j("filter", "FORWARD", "", "kubernetes forwarding rules", "KUBE-FORWARD"),
    j("filter", "INPUT", ctNew, "kubernetes load balancer firewall", "KUBE-PROXY-FIREWALL"),
    j("filter", "OUTPUT", ctNew, "kubernetes load balancer firewall", "KUBE-PROXY-FIREWALL"),
    j("filter", "FORWARD", ctNew, "kubernetes load balancer firewall", "KUBE-PROXY-FIREWALL"),
    j("nat", "OUTPUT", "", "kubernetes service portals", "KUBE-SERVICES"),
    j("nat", "PREROUTING", "", "kubernetes service portals", "KUBE-SERVICES"),
    j("nat", "POSTROUTING", "", "kubernetes postrouting rules", "KUBE-POSTROUTING"),
  ];
  if (config.localhostNodePorts ?? true) {
    rules.push(j("filter", "INPUT", "", "", "KUBE-FIREWALL"), j("filter", "OUTPUT", "", "", "KUBE-FIREWALL"));
  }
  return rules;
}

function ipToInt(ip: string): number {
  return ip.split(".").reduce((acc, o) => ((acc << 8) | Number(o)) >>> 0, 0);
}

export function cidrContains(cidr: string, ip: string): boolean {
  const [base, bitsStr] = cidr.split("/");
  const bits = Number(bitsStr ?? 32);
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip) || !/^\d+\.\d+\.\d+\.\d+$/.test(base)) return false;
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return (ipToInt(base) & mask) === (ipToInt(ip) & mask);
}
