export * from "./stages.ts";
export * from "./packet.ts";
export { parsePacket, isParseError, type ParseError, type ParseResult, type ParseOptions } from "./parse.ts";
export * from "./build.ts";
export * from "./checksum.ts";
export * from "./ip.ts";
export { setSource, setDestination, decrementTTL, rewriteQuoted } from "./rewrite.ts";
export * from "./conntrack.ts";
export * from "./routing.ts";
export * from "./vxlan.ts";
export * from "./flows.ts";
export { DataplaneStats, registerDataplaneMetrics } from "./metrics.ts";
export {
  Pipeline,
  connectionInfo,
  tcpFlagNames,
  type Ingress,
  type Output,
  type PipelineConfig,
} from "./pipeline.ts";
export { NodeDataplane, type NodeDataplaneOptions } from "./node-dataplane.ts";
