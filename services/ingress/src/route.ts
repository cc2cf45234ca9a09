/**
 * route: one request against a RouteTable → what to do with it. Pure: randomness (canary weight)
 * and the clock come in with the request. Phases follow nginx's order: find the server and the
 * location, body size (413), rewrite phase (https redirect), then rate limit and allow/deny
 * (the shell applies the rate limit, which has state), then content (proxy or a status page).
 */
import { lookupHost, normalizeHost } from "./hosts.ts";
import type { Location, RouteTable, Server, Upstream } from "./model.ts";
import { normalizeUri, selectLocation, splitTarget } from "./paths.ts";
import { redirectLocation } from "./annotations/ssl-redirect.ts";
import { decide as annotationRedirect } from "./annotations/redirect.ts";
import { rewrite } from "./annotations/rewrite-target.ts";
import { routeToCanary } from "./annotations/canary.ts";
import { allows } from "./annotations/whitelist-source-range.ts";
import { tooLarge } from "./annotations/proxy-body-size.ts";
import { cookieBelongsTo, keyFromCookie, type Affinity } from "./annotations/affinity.ts";
import type { RateLimit } from "./annotations/limit-rps.ts";

export type Headers = Readonly<Record<string, string | string[] | undefined>>;

export interface RouteRequest {
  method: string;
  /** Host header (or HTTP/2 :authority) */
  host: string | undefined;
  /** the raw request-target, path and query */
  target: string;
  headers: Headers;
  scheme: "http" | "https";
  remoteAddr: string;
  /** uniform in [0, 1): the canary-weight draw */
  random: number;
  /** declared Content-Length, if any */
  contentLength?: number;
}

interface Common {
  server: Server;
  location?: Location;
  /** `$proxy_upstream_name` */
  upstreamName: string;
  /** limit_req runs before allow/deny: the shell checks it first when set */
  rateLimit?: { key: string; limit: RateLimit };
  /** add Strict-Transport-Security (https and the host has a certificate) */
  hsts: boolean;
}

export type Decision =
  | (Common & { kind: "respond"; status: number; why: string })
  | (Common & { kind: "redirect"; status: number; url: string })
  | (Common & {
      kind: "proxy";
      location: Location;
      upstream: Upstream;
      /** `$proxy_alternative_upstream_name`: set when the canary took the request */
      alternativeUpstreamName?: string;
      /** request-target to send upstream */
      upstreamTarget: string;
      /** the sticky session, when the location has one */
      affinity?: { config: Affinity; key?: string; cookiePath: string };
    });

export function parseCookies(header: string | string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  const all = Array.isArray(header) ? header.join("; ") : (header ?? "");
  for (const part of all.split(";")) {
    const eq = part.indexOf("=");
    if (eq === -1) continue;
    const name = part.slice(0, eq).trim();
    if (name && !out.has(name)) out.set(name, part.slice(eq + 1).trim());
  }
  return out;
}

const NO_COOKIES: ReadonlyMap<string, string> = new Map();

/** A decision the controller answers itself: a status page. */
function respond(c: Common, status: number, why: string): Decision {
  return { ...c, kind: "respond", status, why };
}

function redirect(c: Common, status: number, url: string): Decision {
  return { ...c, kind: "redirect", status, url };
}

export function findServer(table: RouteTable, host: string): Server {
  return lookupHost(table.servers, host) ?? table.catchAll;
}

/** nginx's escaping of a rewritten URI before it goes upstream. */
function escapeUri(uri: string): string {
  return encodeURI(uri);
}

export function route(table: RouteTable, req: RouteRequest): Decision {
  const host = normalizeHost(req.host);
  const server = findServer(table, host);
  const hostHasCertificate = host !== "" && lookupHost(table.certificates, host) !== undefined;
  const hsts = req.scheme === "https" && hostHasCertificate;
  const { path: rawPath, query } = splitTarget(req.target);
  const uri = normalizeUri(rawPath);
  if (uri === undefined) return respond({ server, hsts, upstreamName: "" }, 400, "invalid request path");

  const found = selectLocation(server.locations, uri);
  if (!found) return respond({ server, hsts, upstreamName: "internal" }, 404, "no location");
  const location = found.location;
  const a = location.annotations;
  const upstreamName = location.upstream.name;
  const common: Common = { server, hsts, location, upstreamName };

  if (req.contentLength !== undefined && tooLarge(a.proxyBodySize, req.contentLength))
    return respond(common, 413, "request body larger than proxy-body-size");

  const ret = annotationRedirect(a.redirects, { scheme: req.scheme, hostHeader: req.host ?? host, uri });
  if (ret) return redirect(common, ret.status, ret.url);

  const url = redirectLocation(
    a.redirect,
    { scheme: req.scheme, host, requestUri: req.target, uri },
    hostHasCertificate,
  );
  if (url !== undefined) return redirect(common, 308, url);

  const rateLimit = a.rateLimit ? { key: location.id, limit: a.rateLimit } : undefined;
  common.rateLimit = rateLimit;
  if (a.denied !== undefined) return respond(common, 503, a.denied);
  if (a.whitelist && !allows(a.whitelist, req.remoteAddr))
    return respond(common, 403, "client address not in whitelist-source-range");
  if (location.upstream.defaultBackend) return respond(common, 404, "default backend");

  // Only canaries and affinity read cookies; most requests skip the parse.
  const cookies = location.canary || a.affinity ? parseCookies(req.headers["cookie"]) : NO_COOKIES;
  let upstream = location.upstream;
  let alternativeUpstreamName: string | undefined;
  const canary = location.canary;
  if (canary) {
    // An affinitized request stays on the backend its cookie names (affinity-canary-behavior: sticky).
    const affinityCookie = a.affinity ? cookies.get(a.affinity.cookieName) : undefined;
    const sticky = a.affinity
      ? cookieBelongsTo(affinityCookie, canary.upstream.name)
        ? true
        : cookieBelongsTo(affinityCookie, location.upstream.name)
          ? false
          : undefined
      : undefined;
    if (sticky ?? routeToCanary(canary.config, req.headers, cookies, req.random)) {
      upstream = canary.upstream;
      alternativeUpstreamName = canary.upstream.name;
    }
  }
  if (upstream.endpoints.length === 0) return respond(common, 503, upstream.problem ?? "no endpoints");

  let upstreamTarget = req.target;
  if (a.rewriteTarget !== undefined) {
    const rewritten = rewrite(location.path, a.rewriteTarget, uri);
    // nginx appends the original arguments unless the replacement carries its own.
    upstreamTarget = rewritten.includes("?")
      ? escapeUri(rewritten)
      : escapeUri(rewritten) + (query !== undefined ? "?" + query : "");
  }

  const affinity = a.affinity
    ? {
        config: a.affinity,
        key: keyFromCookie(cookies.get(a.affinity.cookieName), upstream.name),
        cookiePath: location.source.path,
      }
    : undefined;
  return {
    server,
    hsts,
    location,
    upstreamName,
    rateLimit,
    kind: "proxy",
    upstream,
    alternativeUpstreamName,
    upstreamTarget,
    affinity,
  };
}
