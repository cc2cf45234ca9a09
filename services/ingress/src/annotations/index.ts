/**
 * All annotations of one Ingress parsed into one typed value. A bad value is reported and the
 * default used, as ingress-nginx logs and carries on; a bad source range denies the location.
 */
import { AnnotationError, type AnnotationMap } from "./common.ts";
import * as affinity from "./affinity.ts";
import * as backendProtocol from "./backend-protocol.ts";
import * as canary from "./canary.ts";
import * as limitRps from "./limit-rps.ts";
import * as proxyBodySize from "./proxy-body-size.ts";
import * as proxyTimeouts from "./proxy-timeouts.ts";
import * as redirect from "./redirect.ts";
import * as rewriteTarget from "./rewrite-target.ts";
import * as serviceUpstream from "./service-upstream.ts";
import * as sslRedirect from "./ssl-redirect.ts";
import * as useRegex from "./use-regex.ts";
import * as whitelist from "./whitelist-source-range.ts";

export { AnnotationError, PREFIX, type AnnotationMap } from "./common.ts";

export interface AnnotationDefaults {
  sslRedirect: boolean;
  proxyBodySize: string;
  timeouts: proxyTimeouts.ProxyTimeouts;
}

export const DEFAULTS: AnnotationDefaults = {
  sslRedirect: true,
  proxyBodySize: proxyBodySize.DEFAULT_PROXY_BODY_SIZE,
  timeouts: proxyTimeouts.DEFAULT_TIMEOUTS,
};

export interface IngressAnnotations {
  redirect: sslRedirect.SslRedirect;
  /** permanent-redirect, temporal-redirect, app-root */
  redirects: redirect.Redirects;
  useRegex: boolean;
  rewriteTarget?: string;
  backendProtocol: backendProtocol.BackendProtocol;
  serviceUpstream: boolean;
  canary?: canary.Canary;
  affinity?: affinity.Affinity;
  timeouts: proxyTimeouts.ProxyTimeouts;
  whitelist?: whitelist.SourceRange;
  /** set when the source range could not be parsed: the location answers 503, as ingress-nginx's denied locations */
  denied?: string;
  rateLimit?: limitRps.RateLimit;
  /** bytes; 0 = unlimited */
  proxyBodySize: number;
}

export function parseAnnotations(
  a: AnnotationMap | undefined,
  defaults: AnnotationDefaults = DEFAULTS,
): { value: IngressAnnotations; errors: string[] } {
  const map = a ?? {};
  const errors: string[] = [];
  function take<T>(f: () => T, dflt: T): T {
    try {
      return f();
    } catch (err) {
      if (!(err instanceof AnnotationError)) throw err;
      errors.push(err.message);
      return dflt;
    }
  }
  let denied: string | undefined;
  const wl = (() => {
    try {
      return whitelist.parse(map);
    } catch (err) {
      if (!(err instanceof AnnotationError)) throw err;
      errors.push(err.message);
      denied = err.message;
      return undefined;
    }
  })();
  const value: IngressAnnotations = {
    redirect: take(() => sslRedirect.parse(map, defaults), {
      sslRedirect: defaults.sslRedirect,
      forceSslRedirect: false,
      forceNoSslRedirect: false,
      preserveTrailingSlash: false,
    }),
    redirects: take(() => redirect.parse(map), {}),
    useRegex: take(() => useRegex.parse(map), false),
    rewriteTarget: take(() => rewriteTarget.parse(map), undefined),
    backendProtocol: take(() => backendProtocol.parse(map), "HTTP"),
    serviceUpstream: take(() => serviceUpstream.parse(map), false),
    canary: take(() => canary.parse(map), undefined),
    affinity: take(() => affinity.parse(map), undefined),
    timeouts: take(() => proxyTimeouts.parse(map, defaults.timeouts), defaults.timeouts),
    whitelist: wl,
    denied,
    rateLimit: take(() => limitRps.parse(map), undefined),
    proxyBodySize: take(
      () => proxyBodySize.parse(map, defaults.proxyBodySize),
      proxyBodySize.parseSize(defaults.proxyBodySize) ?? 0,
    ),
  };
  return { value, errors };
}
