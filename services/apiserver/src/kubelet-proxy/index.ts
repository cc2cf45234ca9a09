export {
  kubeletProxyPlugin,
  kubeletTarget,
  nodeKubeletAddress,
  proxyUpgrade,
  type KubeletProxyOptions,
  type KubeletTarget,
} from "./proxy.ts";
