import { gatewayOf, parseCIDR } from "../core/ipam.ts";
import { ip, ipBatch } from "./run.ts";

/**
 * How a pod's eth0 reaches its node. This is the one place that knows: today a veth pair into a
 * per-node bridge (`cbr0`, holding the podCIDR gateway) in the node's namespace; when the userspace
 * dataplane is in use, a TUN handed to NodeDataplane.attachPod instead.
 */
export interface PodNetworkConfig {
  /** Namespace that holds the node bridge; undefined = the agent's own namespace. */
  nodeNetns?: string;
  bridge: string;
  podCIDR: string;
  /** Destinations the pod routes via its gateway (cluster CIDR, service CIDR, lab ranges). No default route. */
  routes: string[];
  mtu: number;
}

export interface PodAttachment {
  hostVeth: string;
  podIP: string;
  gateway: string;
}

export function hostVethName(uid: string): string {
  return `veth${uid.replace(/-/g, "").slice(0, 8)}`;
}

/** Ensures the node bridge exists with the gateway address of the podCIDR. Idempotent. */
export async function ensureNodeBridge(cfg: PodNetworkConfig): Promise<void> {
  const { prefix } = parseCIDR(cfg.podCIDR);
  const gw = `${gatewayOf(cfg.podCIDR)}/${prefix}`;
  const exists = await ip(cfg.nodeNetns, ["link", "show", cfg.bridge]).then(
    () => true,
    () => false,
  );
  if (!exists) await ip(cfg.nodeNetns, ["link", "add", cfg.bridge, "type", "bridge"]);
  const addrs = await ip(cfg.nodeNetns, ["-o", "-4", "addr", "show", "dev", cfg.bridge]);
  if (!addrs.includes(` ${gw} `)) await ip(cfg.nodeNetns, ["addr", "add", gw, "dev", cfg.bridge]);
  await ip(cfg.nodeNetns, ["link", "set", cfg.bridge, "up"]);
}

/** Gives the pod netns an eth0 with podIP and the lab routes via the gateway (CNI ADD). */
export async function attachPodNetwork(
  cfg: PodNetworkConfig,
  podNetns: string,
  uid: string,
  podIP: string,
): Promise<PodAttachment> {
  const { prefix } = parseCIDR(cfg.podCIDR);
  const gateway = gatewayOf(cfg.podCIDR);
  const hostVeth = hostVethName(uid);
  const hasEth0 = await ip(podNetns, ["link", "show", "eth0"]).then(
    () => true,
    () => false,
  );
  if (!hasEth0) {
    const mtu = String(cfg.mtu);
    const add = [
      [
        "link",
        "add",
        hostVeth,
        "mtu",
        mtu,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "mtu",
        mtu,
        "netns",
        podNetns,
      ],
      ["link", "set", hostVeth, "master", cfg.bridge, "up"],
    ];
    // a host end left over from an earlier attempt is replaced
    await ipBatch(cfg.nodeNetns, add).catch(async () => {
      await ip(cfg.nodeNetns, ["link", "del", hostVeth]).catch(() => undefined);
      await ipBatch(cfg.nodeNetns, add);
    });
    await ipBatch(podNetns, [
      ["addr", "add", `${podIP}/${prefix}`, "dev", "eth0"],
      ["link", "set", "eth0", "up"],
      ...cfg.routes.map((dst) => ["route", "replace", dst, "via", gateway, "dev", "eth0"]),
    ]);
  }
  return { hostVeth, podIP, gateway };
}

/** CNI DEL: the veth pair goes with the pod namespace; remove the host end in case it outlived it. */
export async function detachPodNetwork(cfg: PodNetworkConfig, uid: string): Promise<void> {
  await ip(cfg.nodeNetns, ["link", "del", hostVethName(uid)]).catch(() => undefined);
}
