export { createApiServer, MAX_BODY_BYTES, VERSION_INFO, type ApiServer } from "./server.ts";
export {
  parseConfig,
  parsePortRange,
  firstServiceIP,
  ConfigError,
  type ApiServerConfig,
  type ApiServerFlags,
  type PortRange,
} from "./config.ts";
export type { ApiServerOptions, StartedContext, Controllers, StorageView, RouteContext } from "./options.ts";
export { groupResource, type AdmissionHooks, type HookContext, type HookMap } from "./registry/hooks.ts";
export { run, controlPlane } from "./main.ts";
