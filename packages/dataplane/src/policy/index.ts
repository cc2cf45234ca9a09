export {
  compilePolicies,
  effectivePolicyTypes,
  type PolicyIndex,
  type PodPolicy,
  type CompiledRule,
} from "./compile.ts";
export { NetworkPolicyStage } from "./evaluate.ts";
