// kube-proxy for klab: the pure rule builders and the process around them.
export { run, loadProxyConfig, type ProxyRunOptions, type RunningProxy } from "./app.ts";
export {
  buildIptablesRules,
  buildIptablesRuleset,
  iptablesJumpRules,
  computeProbability,
  type IptablesProxyConfig,
} from "./iptables-rules.ts";
export { buildIpvsRuleset, type IpvsProxyConfig } from "./ipvs-rules.ts";
export {
  buildServicePorts,
  categorizeEndpoints,
  type ServicePortInfo,
  type EndpointInfo,
  type NodeInfo,
} from "./service-ports.ts";
export { portProtoHash, serviceClusterChain, endpointChain } from "./chain-names.ts";
export { parseProxyConfig, type ProxyConfig, type ProxyMode } from "./config.ts";
export { UserspaceProxier, buildUserspaceRules } from "./userspace.ts";
export { Proxier, socketSink, type NatSink } from "./proxier.ts";
