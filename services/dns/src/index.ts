export { DnsServer, type ServerOptions } from "./server.ts";
export { parseCorefile, type Directive, type ServerBlock, type ParsedCorefile } from "./corefile/parse.ts";
export { CorefileError } from "./corefile/lexer.ts";
export {
  answer,
  type KubeAnswer,
  type KubernetesOptions,
  defaultKubernetesOptions,
  DNS_SCHEMA_VERSION,
} from "./kubernetes/answer.ts";
export { indexCluster, type ClusterState, type ClusterIndex } from "./kubernetes/cluster.ts";
export type { ClusterSource, ClusterSourceFactory, ClusterSourceOptions } from "./kubernetes/source.ts";
export { InformerSource } from "./kubernetes/informers.ts";
export { PLUGIN_ORDER } from "./plugins/order.ts";
