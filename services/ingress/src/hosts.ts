/**
 * Host handling as nginx's server_name selection does it for ingress-nginx: exact names first,
 * then a one-label wildcard (`*.foo.com` compiles to `^[\w-]+\.foo\.com$`), then the catch-all `_`.
 */

export const CATCH_ALL = "_";

/** Lowercase, without `:port` and without one trailing dot, as nginx's `$host`. IPv6 literals keep their brackets. */
export function normalizeHost(raw: string | undefined): string {
  if (!raw) return "";
  let host = raw.trim().toLowerCase();
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    return end === -1 ? host : host.slice(0, end + 1);
  }
  const colon = host.indexOf(":");
  if (colon !== -1) host = host.slice(0, colon);
  if (host.endsWith(".")) host = host.slice(0, -1);
  return host;
}

/** A rule host is valid when it is a DNS name, optionally with `*` as its whole first label. */
export function validRuleHost(host: string): string | undefined {
  if (host === "*") return "a bare '*' host is not allowed";
  const labels = host.split(".");
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    if (i === 0 && label === "*") continue;
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(label)) return `'${host}' is not a valid DNS name`;
  }
  if (/^[0-9.]+$/.test(host)) return `'${host}' is an IP address; Ingress hosts must be names`;
  return undefined;
}

/** The one-label wildcard that would cover `host`: `a.foo.com` → `*.foo.com`; a single label has none. */
export function wildcardOf(host: string): string | undefined {
  const dot = host.indexOf(".");
  if (dot <= 0) return undefined;
  const first = host.slice(0, dot);
  // nginx's [\w-]+ : a wildcard never covers an empty or dotted label.
  if (!/^[\w-]+$/.test(first)) return undefined;
  return "*" + host.slice(dot);
}

/** Look a normalized host up in a map keyed by exact and `*.`-wildcard names. */
export function lookupHost<T>(map: ReadonlyMap<string, T>, host: string): T | undefined {
  const exact = map.get(host);
  if (exact !== undefined) return exact;
  const wildcard = wildcardOf(host);
  return wildcard === undefined ? undefined : map.get(wildcard);
}
