export { run, parsePublish, type EdgeFlags } from "./main.ts";
export { assignAddresses, parsePool, inPool } from "./pool.ts";
export { desiredListeners } from "./listeners.ts";
export { answerApi } from "./internet/api.ts";
