export {
  compilePolicies,
  effectivePolicyTypes,
  type PolicyIndex,
  type PodPolicy,
  type CompiledRule,
} from "./compile.ts";
export { NetworkPolicyStage } from "./evaluate.ts";
export { PolicyController, type PolicyControllerOptions, type PolicyIndexSink } from "./controller.ts";
export {
  listenFlows,
  readFlows,
  flowsSocketPath,
  FLOWS_SOCKET_NAME,
  type FlowsRequest,
} from "./flow-socket.ts";
