/** The RouteTable: everything the request path needs, built in one piece by buildRoutes. */
import type { PathType } from "@klab/api";
import type { IngressAnnotations, AnnotationDefaults } from "./annotations/index.ts";
import type { Canary } from "./annotations/canary.ts";
import type { LocationMatcher } from "./paths.ts";
import type { CertificateMaterial } from "./tls.ts";

export interface UpstreamEndpoint {
  ip: string;
  port: number;
  /** `ip:port`, as `$upstream_addr` shows it */
  address: string;
}

export interface Upstream {
  /** `<namespace>-<service>-<port>` or `upstream-default-backend` */
  name: string;
  namespace?: string;
  service?: string;
  /** ready endpoints (or the ClusterIP with service-upstream) */
  endpoints: UpstreamEndpoint[];
  /** the controller's own default backend: answers 404 itself */
  defaultBackend: boolean;
  /** why there are no endpoints, for logs */
  problem?: string;
}

export interface IngressRef {
  namespace: string;
  name: string;
}

export interface Location {
  /** unique inside the table; keys rate limits */
  id: string;
  /** the nginx location path this came from (after Prefix expansion) */
  path: string;
  /** the Ingress path it was generated from */
  source: { path: string; pathType: PathType };
  matcher: LocationMatcher;
  ingress?: IngressRef;
  upstream: Upstream;
  canary?: { upstream: Upstream; config: Canary; ingress: IngressRef };
  annotations: IngressAnnotations;
}

export interface Server {
  /** exact name, `*.foo.com`, or `_` */
  hostname: string;
  locations: Location[];
  regexMode: boolean;
}

export interface RouteTable {
  /** by exact name and by `*.`-wildcard name; `_` is the catch-all */
  servers: ReadonlyMap<string, Server>;
  catchAll: Server;
  /** hosts with TLS configured (exact or wildcard names) → the certificate they serve */
  certificates: ReadonlyMap<string, CertificateMaterial>;
  defaultCertificate: CertificateMaterial;
  /** Ingresses this controller serves (it writes their status) */
  ingresses: IngressRef[];
  problems: Array<{ ingress?: string; message: string }>;
}

export interface ControllerConfig {
  /** IngressClass spec.controller value this controller owns */
  controllerClass: string;
  /** --ingress-class, compared with the legacy kubernetes.io/ingress.class annotation */
  ingressClass: string;
  watchIngressWithoutClass: boolean;
  strictValidatePathType: boolean;
  defaultCertificate: CertificateMaterial;
  annotationDefaults: AnnotationDefaults;
}
