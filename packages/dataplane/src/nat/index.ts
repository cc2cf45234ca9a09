// Service NAT for the node dataplane: kube-proxy's iptables rules and IPVS tables, and the
// loader socket kube-proxy programs them through.
export { RestoreError, parseRestore, tokenize } from "./iptables/parse.ts";
export { IptablesRuleset, type RestoreOptions } from "./iptables/ruleset.ts";
export {
  IptablesEvaluator,
  describeHit,
  type EvalEnv,
  type EvalPacket,
  type Hook,
  type IptablesDecision,
  type RuleHit,
} from "./iptables/evaluate.ts";
export { iptablesSave, formatRule, IPTABLES_VERSION, type SaveOptions } from "./iptables/save.ts";
export {
  IptablesNatStage,
  toNatDecision,
  syntheticPacket,
  type IptablesStageOptions,
} from "./iptables-stage.ts";
export { parseIPv4, formatIPv4, parseCidr } from "./ip.ts";
export { IpvsNatStage, type IpvsLoad } from "./ipvs-stage.ts";
export {
  IpvsTable,
  IpvsError,
  type VirtualServer,
  type RealServer,
  type IpvsProtocol,
} from "./ipvs/table.ts";
export { ipvsadmList, IPVS_VERSION_LINE, type IpvsadmOptions } from "./ipvs/ipvsadm.ts";
export {
  createScheduler,
  KUBE_PROXY_SCHEDULERS,
  SCHEDULERS,
  isSchedulerName,
  type SchedulerName,
} from "./ipvs/schedulers.ts";
export {
  ServiceNat,
  NatLoadError,
  PROXY_MODES,
  type ProxyMode,
  type NatLoad,
  type EnsureRule,
  type ServiceNatOptions,
} from "./service-nat.ts";
export {
  startNatLoader,
  natRequest,
  natSocketPath,
  handleNatRequest,
  NAT_SOCKET_NAME,
  type NatRequest,
  type NatResponse,
} from "./loader.ts";
