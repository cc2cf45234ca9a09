/** Builders of Kubernetes objects for tests and the benchmark: short to write, complete on the wire. */
import type {
  EndpointSlice,
  HTTPIngressPath,
  Ingress,
  IngressClass,
  IngressTLS,
  PathType,
  Secret,
  Service,
} from "@klab/api";
import type { AnnotationDefaults } from "./annotations/index.ts";
import { DEFAULTS } from "./annotations/index.ts";
import type { ControllerConfig } from "./model.ts";
import type { CertificateMaterial } from "./tls.ts";
import { tlsSecretData } from "./certificates.ts";

let clock = Date.parse("2026-01-01T00:00:00Z");

export interface PathSpec {
  path: string;
  pathType?: PathType;
  service: string;
  port?: number | string;
}

export interface IngressSpecLite {
  namespace?: string;
  className?: string | null;
  annotations?: Record<string, string>;
  rules?: Array<{ host?: string; paths: PathSpec[] }>;
  defaultBackend?: { service: string; port?: number | string };
  tls?: IngressTLS[];
  /** RFC 3339; default: one second after the previous fixture */
  created?: string;
}

function backend(service: string, port: number | string = 80): HTTPIngressPath["backend"] {
  return { service: { name: service, port: typeof port === "number" ? { number: port } : { name: port } } };
}

export function ingress(name: string, spec: IngressSpecLite): Ingress {
  clock += 1000;
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "Ingress",
    metadata: {
      name,
      namespace: spec.namespace ?? "default",
      uid: `uid-${name}`,
      creationTimestamp: spec.created ?? new Date(clock).toISOString().replace(/\.\d+Z$/, "Z"),
      annotations: spec.annotations,
    },
    spec: {
      ingressClassName: spec.className === null ? undefined : (spec.className ?? "nginx"),
      defaultBackend: spec.defaultBackend
        ? backend(spec.defaultBackend.service, spec.defaultBackend.port)
        : undefined,
      tls: spec.tls,
      rules: spec.rules?.map((r) => ({
        host: r.host,
        http: {
          paths: r.paths.map((p) => ({
            path: p.path,
            pathType: p.pathType ?? "Prefix",
            backend: backend(p.service, p.port),
          })),
        },
      })),
    },
  };
}

export function ingressClass(
  name = "nginx",
  opts: { controller?: string; isDefault?: boolean } = {},
): IngressClass {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "IngressClass",
    metadata: {
      name,
      annotations: opts.isDefault ? { "ingressclass.kubernetes.io/is-default-class": "true" } : undefined,
    },
    spec: { controller: opts.controller ?? "k8s.io/ingress-nginx" },
  };
}

export function service(
  name: string,
  opts: {
    namespace?: string;
    port?: number;
    portName?: string;
    clusterIP?: string;
    ports?: Array<{ name?: string; port: number }>;
  } = {},
): Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: opts.namespace ?? "default" },
    spec: {
      type: "ClusterIP",
      clusterIP: opts.clusterIP ?? "10.96.0.100",
      ports: opts.ports ?? [{ name: opts.portName, port: opts.port ?? 80, protocol: "TCP" }],
    },
  };
}

export function endpointSlice(
  serviceName: string,
  endpoints: Array<{ ip: string; ready?: boolean }>,
  opts: { namespace?: string; port: number; portName?: string },
): EndpointSlice {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: `${serviceName}-abcde`,
      namespace: opts.namespace ?? "default",
      labels: { "kubernetes.io/service-name": serviceName },
    },
    addressType: "IPv4",
    endpoints: endpoints.map((e) => ({ addresses: [e.ip], conditions: { ready: e.ready ?? true } })),
    ports: [{ name: opts.portName ?? "", port: opts.port, protocol: "TCP" }],
  };
}

export function tlsSecret(name: string, m: CertificateMaterial, namespace = "default"): Secret {
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "kubernetes.io/tls",
    metadata: { name, namespace },
    data: tlsSecretData(m),
  };
}

export function controllerConfig(
  defaultCertificate: CertificateMaterial,
  annotationDefaults: AnnotationDefaults = DEFAULTS,
): ControllerConfig {
  return {
    controllerClass: "k8s.io/ingress-nginx",
    ingressClass: "nginx",
    watchIngressWithoutClass: false,
    strictValidatePathType: true,
    defaultCertificate,
    annotationDefaults,
  };
}
