export * from "./kubeconfig.ts";
export * from "./client.ts";
export * from "./informer.ts";
