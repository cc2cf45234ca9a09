/**
 * buildRoutes: the whole RouteTable from the current objects, as ingress-nginx's
 * getBackendServers does it — Ingresses sorted oldest first, rules merged per host (first wins
 * on the same path and pathType), canaries attached to their main location, TLS per host
 * (first wins), regex mode per host, default backends. Pure: same objects in, same table out.
 */
import type { EndpointSlice, Ingress, IngressBackend, IngressClass, Secret, Service } from "@klab/api";
import { parseAnnotations, type IngressAnnotations } from "./annotations/index.ts";
import { defaultBackendUpstream, indexServices, resolveUpstream, type ServiceIndex } from "./backends.ts";
import { CATCH_ALL, validRuleHost } from "./hosts.ts";
import { servedByUs } from "./ingress-class.ts";
import type { ControllerConfig, IngressRef, Location, RouteTable, Server, Upstream } from "./model.ts";
import { compileMatcher, describeMatcher, expandPath, validatePath } from "./paths.ts";
import { covers, loadTlsSecret, type CertificateMaterial } from "./tls.ts";
import type { PathType } from "@klab/api";

const refOf = (ing: Ingress): IngressRef => ({
  namespace: ing.metadata.namespace ?? "default",
  name: ing.metadata.name ?? "",
});
const keyOf = (r: IngressRef): string => `${r.namespace}/${r.name}`;

/** Oldest first; equal timestamps by namespace/name descending (ingress-nginx's sort quirk). */
export function sortIngresses(list: readonly Ingress[]): Ingress[] {
  return [...list].sort((a, b) => {
    const ta = Date.parse(a.metadata.creationTimestamp ?? "") || 0;
    const tb = Date.parse(b.metadata.creationTimestamp ?? "") || 0;
    if (ta !== tb) return ta - tb;
    const ka = keyOf(refOf(a));
    const kb = keyOf(refOf(b));
    return ka < kb ? 1 : ka > kb ? -1 : 0;
  });
}

interface DraftPath {
  path: string;
  pathType: PathType;
  ingress: IngressRef;
  upstream: Upstream;
  annotations: IngressAnnotations;
  canary?: Location["canary"];
}

interface DraftServer {
  hostname: string;
  paths: DraftPath[];
  /** fallback for unmatched paths: the creating Ingress's spec.defaultBackend, if any */
  fallback?: { upstream: Upstream; ingress: IngressRef; annotations: IngressAnnotations };
}

export function buildRoutes(
  ingresses: readonly Ingress[],
  ingressClasses: readonly IngressClass[],
  services: readonly Service[],
  endpointSlices: readonly EndpointSlice[],
  secrets: readonly Secret[],
  config: ControllerConfig,
): RouteTable {
  const problems: RouteTable["problems"] = [];
  const index = indexServices(services, endpointSlices);
  const secretByKey = new Map<string, Secret>();
  for (const s of secrets) secretByKey.set(`${s.metadata.namespace}/${s.metadata.name}`, s);

  const served: Array<{ ing: Ingress; ref: IngressRef; annotations: IngressAnnotations }> = [];
  for (const ing of sortIngresses(ingresses)) {
    if (ing.metadata.deletionTimestamp) continue;
    if (!servedByUs(ing, ingressClasses, config).served) continue;
    const ref = refOf(ing);
    const { value, errors } = parseAnnotations(ing.metadata.annotations, config.annotationDefaults);
    for (const message of errors) problems.push({ ingress: keyOf(ref), message });
    served.push({ ing, ref, annotations: value });
  }

  const upstreamFor = (
    ns: string,
    b: IngressBackend | undefined,
    a: IngressAnnotations,
    where: string,
  ): Upstream | undefined => {
    if (!b?.service) {
      if (b?.resource)
        problems.push({
          ingress: where,
          message: `resource backends are not supported; ${b.resource.kind}/${b.resource.name} is ignored`,
        });
      return undefined;
    }
    return resolveUpstream(ns, b.service, index, a.serviceUpstream);
  };

  const drafts = new Map<string, DraftServer>();
  const order: string[] = [];
  const server = (host: string): DraftServer => {
    let s = drafts.get(host);
    if (!s) {
      s = { hostname: host, paths: [] };
      drafts.set(host, s);
      order.push(host);
    }
    return s;
  };
  const catchAll = server(CATCH_ALL);
  let catchAllOwner: IngressRef | undefined;

  // Main Ingresses first, in age order: the first to claim a host+path+pathType keeps it.
  for (const { ing, ref, annotations } of served) {
    if (annotations.canary) continue;
    const ns = ref.namespace;
    const rules = ing.spec?.rules ?? [];
    const dflt = ing.spec?.defaultBackend;
    if (rules.length === 0) {
      if (!dflt) {
        problems.push({ ingress: keyOf(ref), message: "Ingress has neither rules nor a defaultBackend" });
        continue;
      }
      if (catchAllOwner) continue;
      const upstream = upstreamFor(ns, dflt, annotations, keyOf(ref));
      if (upstream) {
        catchAll.fallback = { upstream, ingress: ref, annotations };
        catchAllOwner = ref;
      }
      continue;
    }
    for (const rule of rules) {
      const host = rule.host ? rule.host.toLowerCase() : CATCH_ALL;
      if (host !== CATCH_ALL) {
        const bad = validRuleHost(host);
        if (bad) {
          problems.push({ ingress: keyOf(ref), message: bad });
          continue;
        }
      }
      const created = !drafts.has(host);
      const srv = server(host);
      if (created && dflt && host !== CATCH_ALL) {
        const upstream = upstreamFor(ns, dflt, annotations, keyOf(ref));
        if (upstream) srv.fallback = { upstream, ingress: ref, annotations };
      }
      for (const p of rule.http?.paths ?? []) {
        const path = p.path ?? "/";
        const invalid = validatePath({ path, pathType: p.pathType }, config.strictValidatePathType);
        if (invalid) {
          problems.push({ ingress: keyOf(ref), message: invalid });
          continue;
        }
        const taken = srv.paths.find((d) => d.path === path && d.pathType === p.pathType);
        if (taken) {
          problems.push({
            ingress: keyOf(ref),
            message: `host ${host} path ${path} (${p.pathType}) is already defined by Ingress ${keyOf(taken.ingress)}; ignored`,
          });
          continue;
        }
        const upstream = upstreamFor(ns, p.backend, annotations, keyOf(ref)) ?? defaultBackendUpstream;
        srv.paths.push({ path, pathType: p.pathType, ingress: ref, upstream, annotations });
      }
    }
  }

  // Canaries never become primaries: they attach to the main location of the same host and path.
  for (const { ing, ref, annotations } of served) {
    const canary = annotations.canary;
    if (!canary) continue;
    for (const rule of ing.spec?.rules ?? []) {
      const host = rule.host ? rule.host.toLowerCase() : CATCH_ALL;
      for (const p of rule.http?.paths ?? []) {
        const path = p.path ?? "/";
        const main = drafts.get(host)?.paths.find((d) => d.path === path && d.pathType === p.pathType);
        if (!main) {
          problems.push({
            ingress: keyOf(ref),
            message: `canary for host ${host} path ${path} has no main Ingress; ignored`,
          });
          continue;
        }
        if (main.canary) {
          problems.push({
            ingress: keyOf(ref),
            message: `host ${host} path ${path} already has canary ${keyOf(main.canary.ingress)}; ignored`,
          });
          continue;
        }
        const upstream = upstreamFor(ref.namespace, p.backend, annotations, keyOf(ref));
        if (upstream) main.canary = { upstream, config: canary, ingress: ref };
      }
    }
  }

  // TLS: the oldest Ingress naming a host decides its certificate.
  const certificates = new Map<string, CertificateMaterial>();
  const nowMs = Date.now();
  for (const { ing, ref, annotations } of served) {
    if (annotations.canary) continue;
    const ruleHosts = (ing.spec?.rules ?? [])
      .map((r) => r.host?.toLowerCase())
      .filter((h): h is string => !!h);
    for (const tls of ing.spec?.tls ?? []) {
      const secret = tls.secretName ? secretByKey.get(`${ref.namespace}/${tls.secretName}`) : undefined;
      let material: CertificateMaterial | undefined;
      if (tls.secretName && !secret)
        problems.push({
          ingress: keyOf(ref),
          message: `secret ${ref.namespace}/${tls.secretName} not found; using the default certificate`,
        });
      if (secret) {
        const loaded = loadTlsSecret(secret);
        if (typeof loaded === "string")
          problems.push({ ingress: keyOf(ref), message: `${loaded}; using the default certificate` });
        else if (new Date(loaded.cert.validTo).getTime() < nowMs)
          problems.push({
            ingress: keyOf(ref),
            message: `certificate in ${loaded.id} has expired; using the default certificate`,
          });
        else material = loaded;
      }
      const explicit = (tls.hosts ?? []).map((h) => h.toLowerCase());
      const hosts = explicit.length ? explicit : ruleHosts.filter((h) => material && covers(material, h));
      for (const host of hosts) {
        if (certificates.has(host)) continue;
        if (material && !covers(material, host)) {
          problems.push({
            ingress: keyOf(ref),
            message: `certificate in ${material.id} does not cover host ${host}; using the default certificate`,
          });
          certificates.set(host, config.defaultCertificate);
        } else certificates.set(host, material ?? config.defaultCertificate);
      }
    }
  }

  // Locations, in nginx's shape.
  const servers = new Map<string, Server>();
  for (const host of order) {
    const d = drafts.get(host)!;
    const regexMode = d.paths.some(
      (p) => p.annotations.useRegex || p.annotations.rewriteTarget !== undefined,
    );
    const exactPaths = new Set(d.paths.filter((p) => p.pathType === "Exact").map((p) => p.path));
    const locations: Location[] = [];
    const add = (
      path: string,
      exact: boolean,
      dp: Omit<DraftPath, "ingress"> & { ingress?: IngressRef },
      where: string,
    ): void => {
      const matcher = compileMatcher(path, exact, regexMode);
      if (typeof matcher === "string") {
        problems.push({ ingress: where, message: matcher });
        return;
      }
      const id = `${host} ${describeMatcher(matcher)}`;
      if (locations.some((l) => l.id === id)) return;
      locations.push({
        id,
        path,
        source: { path: dp.path, pathType: dp.pathType },
        matcher,
        ingress: dp.ingress,
        upstream: dp.upstream,
        canary: dp.canary,
        annotations: dp.annotations,
      });
    };
    for (const p of d.paths)
      for (const loc of expandPath(p, exactPaths)) add(loc.path, loc.exact, p, keyOf(p.ingress));
    if (!locations.some((l) => l.path === "/" && l.matcher.kind !== "exact")) {
      const fb = d.fallback;
      const annotations = fb?.annotations ?? parseAnnotations({}, config.annotationDefaults).value;
      add(
        "/",
        false,
        {
          path: "/",
          pathType: "Prefix",
          ingress: fb?.ingress,
          upstream: fb?.upstream ?? defaultBackendUpstream,
          annotations,
        },
        host,
      );
    }
    // ingress-nginx orders a server's locations by path length, longest first (stable).
    locations.sort((a, b) => b.path.length - a.path.length);
    const srv: Server = { hostname: host, locations, regexMode };
    servers.set(host, srv);
  }

  return {
    servers,
    catchAll: servers.get(CATCH_ALL)!,
    certificates,
    defaultCertificate: config.defaultCertificate,
    ingresses: served.map((s) => s.ref),
    problems,
  };
}
