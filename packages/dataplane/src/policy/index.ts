export {
  compilePolicies,
  effectivePolicyTypes,
  type PolicyIndex,
  type PodPolicy,
  type CompiledRule,
} from "./compile.ts";
export { NetworkPolicyStage } from "./evaluate.ts";
export { PolicyController, type PolicyControllerOptions, type PolicyIndexSink } from "./controller.ts";
