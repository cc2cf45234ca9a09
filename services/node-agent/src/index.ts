export { run } from "./main.ts";
export { NodeAgent, type NodeAgentOptions } from "./agent.ts";
export { parseConfig, ConfigError, type NodeAgentFlags } from "./config.ts";
export { prepareImagePrograms } from "./images/bundle.ts";
export { KUBELET_PORT } from "./node/node-status.ts";
