export { buildRoutes, sortIngresses } from "./build.ts";
export { route, type Decision, type RouteRequest } from "./route.ts";
export type { ControllerConfig, RouteTable, Server, Location, Upstream, UpstreamEndpoint } from "./model.ts";
export {
  parseAnnotations,
  DEFAULTS as ANNOTATION_DEFAULTS,
  type IngressAnnotations,
} from "./annotations/index.ts";
export { selectCertificate, loadTlsSecret, type CertificateMaterial } from "./tls.ts";
export { fakeCertificate, selfSigned, tlsSecretData, FAKE_CERTIFICATE_CN } from "./certificates.ts";
export { IngressServer, type IngressServerOptions } from "./http/server.ts";
export { IngressController, type Sources } from "./controller.ts";
export { statusAddresses } from "./status.ts";
export { runIngressController, DEFAULT_OPTIONS, type IngressOptions } from "./main.ts";
