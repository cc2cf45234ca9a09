/**
 * ssl-redirect (default true: redirect http to https when the host has TLS) and
 * force-ssl-redirect (redirect even without TLS), decided as ingress-nginx's lua_ingress.lua does.
 */
import { type AnnotationMap, parseBool } from "./common.ts";

export interface SslRedirect {
  sslRedirect: boolean;
  forceSslRedirect: boolean;
  forceNoSslRedirect: boolean;
  preserveTrailingSlash: boolean;
}

export function parse(a: AnnotationMap, defaults: { sslRedirect: boolean }): SslRedirect {
  return {
    sslRedirect: parseBool(a, "ssl-redirect", defaults.sslRedirect),
    forceSslRedirect: parseBool(a, "force-ssl-redirect", false),
    forceNoSslRedirect: parseBool(a, "force-no-ssl-redirect", false),
    preserveTrailingSlash: parseBool(a, "preserve-trailing-slash", false),
  };
}

/** The https URL to redirect to, or undefined when this request stays where it is. */
export function redirectLocation(
  cfg: SslRedirect,
  req: { scheme: "http" | "https"; host: string; requestUri: string; uri: string },
  hostHasCertificate: boolean,
): string | undefined {
  if (cfg.forceNoSslRedirect) return undefined;
  if (req.uri.startsWith("/.well-known/acme-challenge")) return undefined;
  const redirect =
    (cfg.forceSslRedirect && req.scheme === "http") ||
    (req.scheme === "http" && cfg.sslRedirect && hostHasCertificate);
  if (!redirect) return undefined;
  let uri = req.requestUri;
  // ingress-nginx removes one trailing '/', so `/` redirects to `https://host`.
  if (!cfg.preserveTrailingSlash && uri.endsWith("/")) uri = uri.slice(0, -1);
  return `https://${req.host}${uri}`;
}
