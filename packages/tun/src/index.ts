export { openTun, TunDevice, type OpenTunOptions } from "./tun.ts";
export { configureInterface, ip, type InterfaceConfig } from "./configure.ts";
