import type { Pod, PodDNSConfig } from "@klab/api";

/** What the node contributes to pod DNS: its own resolv.conf and the cluster's DNS settings. */
export interface ClusterDNS {
  /** The kube-dns Service IP (kubelet --cluster-dns). */
  clusterDNS: string[];
  /** kubelet --cluster-domain. */
  clusterDomain: string;
}

export interface ResolvConf {
  nameservers: string[];
  searches: string[];
  options: string[];
}

// kubelet's limits (pkg/kubelet/network/dns): glibc honours at most 3 nameservers, 32 search paths.
const MAX_NAMESERVERS = 3;
const MAX_SEARCH_PATHS = 32;
const MAX_SEARCH_CHARS = 2048;

/** Parses a resolv.conf the way kubelet reads --resolv-conf: nameserver, search/domain, options. */
export function parseResolvConf(text: string): ResolvConf {
  const out: ResolvConf = { nameservers: [], searches: [], options: [] };
  for (const raw of text.split("\n")) {
    const line = raw.replace(/[#;].*$/, "").trim();
    if (!line) continue;
    const [key, ...fields] = line.split(/\s+/);
    if (key === "nameserver" && fields[0]) out.nameservers.push(fields[0]);
    // the last search/domain line wins, as in the resolver
    else if (key === "search" || key === "domain") out.searches = fields.map((f) => f.replace(/\.$/, ""));
    else if (key === "options") out.options.push(...fields);
  }
  return out;
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

/** kubelet mergeDNSOptions: a later option with the same name replaces the earlier one. */
function mergeOptions(existing: string[], extra: PodDNSConfig["options"]): string[] {
  const byName = new Map<string, string>();
  for (const o of existing) byName.set(o.split(":")[0], o);
  for (const o of extra ?? []) {
    if (!o.name) continue;
    byName.set(o.name, o.value !== undefined && o.value !== "" ? `${o.name}:${o.value}` : o.name);
  }
  return [...byName.values()];
}

function appendDNSConfig(base: ResolvConf, cfg: PodDNSConfig | undefined): ResolvConf {
  if (!cfg) return base;
  return {
    nameservers: unique([...base.nameservers, ...(cfg.nameservers ?? [])]),
    searches: unique([...base.searches, ...(cfg.searches ?? [])]),
    options: mergeOptions(base.options, cfg.options),
  };
}

function trimSearches(searches: string[]): string[] {
  const out: string[] = [];
  let chars = 0;
  for (const s of searches) {
    if (out.length >= MAX_SEARCH_PATHS || chars + s.length + (out.length ? 1 : 0) > MAX_SEARCH_CHARS) break;
    chars += s.length + (out.length ? 1 : 0);
    out.push(s);
  }
  return out;
}

/**
 * The effective policy after kubelet's hostNetwork rule: ClusterFirst on a hostNetwork pod
 * falls back to Default; ClusterFirstWithHostNet keeps the cluster DNS.
 */
export function effectiveDNSPolicy(pod: Pod): "ClusterFirst" | "Default" | "None" {
  const policy = pod.spec?.dnsPolicy ?? "ClusterFirst";
  const hostNetwork = pod.spec?.hostNetwork === true;
  if (policy === "None") return "None";
  if (policy === "Default") return "Default";
  if (policy === "ClusterFirstWithHostNet") return "ClusterFirst";
  return hostNetwork ? "Default" : "ClusterFirst";
}

/** The resolver configuration kubelet gives a pod (pkg/kubelet/network/dns GetPodDNS). */
export function podResolvConf(pod: Pod, node: ResolvConf, cluster: ClusterDNS): ResolvConf {
  const policy = effectiveDNSPolicy(pod);
  let base: ResolvConf;
  if (policy === "None") {
    base = { nameservers: [], searches: [], options: [] };
  } else if (policy === "Default") {
    base = { nameservers: [...node.nameservers], searches: [...node.searches], options: [...node.options] };
  } else {
    const ns = pod.metadata?.namespace ?? "default";
    const d = cluster.clusterDomain;
    base = {
      nameservers: [...cluster.clusterDNS],
      searches: unique([`${ns}.svc.${d}`, `svc.${d}`, d, ...node.searches]),
      options: ["ndots:5"],
    };
  }
  const merged = appendDNSConfig(base, pod.spec?.dnsConfig);
  return {
    nameservers: merged.nameservers.slice(0, MAX_NAMESERVERS),
    searches: trimSearches(merged.searches),
    options: merged.options,
  };
}

/** The file as the container runtime writes it: search, then nameservers, then options. */
export function formatResolvConf(rc: ResolvConf): string {
  const lines: string[] = [];
  if (rc.searches.length) lines.push(`search ${rc.searches.join(" ")}`);
  for (const ns of rc.nameservers) lines.push(`nameserver ${ns}`);
  if (rc.options.length) lines.push(`options ${rc.options.join(" ")}`);
  return lines.join("\n") + "\n";
}

/** The pod's hostname as kubelet computes it: spec.hostname or the pod name, at most 63 characters. */
export function podHostname(pod: Pod): string {
  const hostname = pod.spec?.hostname || pod.metadata?.name || "";
  return hostname.length > 63 ? hostname.slice(0, 63).replace(/[-.]+$/, "") : hostname;
}

function hostAliasEntries(pod: Pod): string {
  const aliases = pod.spec?.hostAliases ?? [];
  if (!aliases.length) return "";
  let out = "\n# Entries added by HostAliases.\n";
  for (const a of aliases) for (const h of a.hostnames ?? []) out += `${a.ip}\t${h}\n`;
  return out;
}

/** /etc/hosts exactly as kubelet manages it (pkg/kubelet/kubelet_pods.go). */
export function podHostsFile(pod: Pod, podIPs: string[], clusterDomain: string, nodeHosts: string): string {
  if (pod.spec?.hostNetwork) {
    return "# Kubernetes-managed hosts file (host network).\n" + nodeHosts + hostAliasEntries(pod);
  }
  const hostname = podHostname(pod);
  const sub = pod.spec?.subdomain;
  const domain = sub ? `${sub}.${pod.metadata?.namespace ?? "default"}.svc.${clusterDomain}` : "";
  let out =
    "# Kubernetes-managed hosts file.\n" +
    "127.0.0.1\tlocalhost\n" +
    "::1\tlocalhost ip6-localhost ip6-loopback\n" +
    "fe00::0\tip6-localnet\n" +
    "fe00::0\tip6-mcastprefix\n" +
    "fe00::1\tip6-allnodes\n" +
    "fe00::2\tip6-allrouters\n";
  for (const ip of podIPs)
    out += domain ? `${ip}\t${hostname}.${domain}\t${hostname}\n` : `${ip}\t${hostname}\n`;
  return out + hostAliasEntries(pod);
}
