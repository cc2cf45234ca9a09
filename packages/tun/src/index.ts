export { openTun, TunDevice, type OpenTunOptions } from "./tun.ts";
export { UdpSocket } from "./udp.ts";
export { configureInterface, ip, type InterfaceConfig } from "./configure.ts";
