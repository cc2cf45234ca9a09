import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { configureInterface, openTun, type TunDevice } from "@klab/tun";
import type { Server } from "node:net";
import { NodeDataplane } from "@klab/dataplane";
import { ServiceNat, startNatLoader } from "@klab/dataplane/nat/index.ts";
import { listenFlows, NetworkPolicyStage, PolicyController } from "@klab/dataplane/policy/index.ts";
import type { KubeClient } from "@klab/client";
import { FaultController } from "@klab/dataplane/faults/controller.ts";
import { CniConfig } from "./cni-config.ts";
import { configurePodInterface, ip } from "./run.ts";
import { NodePortListeners, steerNodePorts } from "./nodeports.ts";
import { attachPodNetwork, detachPodNetwork, ensureNodeBridge, type PodNetworkConfig } from "./attach.ts";
import { netnsPath } from "./netns.ts";
import { parseCIDR } from "../core/ipam.ts";

/**
 * The CNI of a node: how a pod's eth0 reaches the node. Two implementations of one contract:
 * the userspace dataplane (eth0 is a TUN read by NodeDataplane, which routes, tracks, NATs and
 * tunnels between nodes) and a kernel bridge (a veth into `cbr0`), for hosts without /dev/net/tun.
 */
export interface PodNetwork {
  readonly kind: "tun" | "bridge";
  setup(podCIDR: string): Promise<void>;
  /** CNI ADD; called again for an adopted pod after an agent restart (must re-attach, not fail). */
  attach(podNetns: string, uid: string, podIP: string): Promise<void>;
  /** CNI DEL. */
  detach(podNetns: string | undefined, uid: string, podIP: string): Promise<void>;
  /** Other nodes' pod CIDRs and addresses, for the overlay. */
  setRemoteNodes(nodes: Array<{ podCIDR: string; nodeIP: string }>): void;
  stop(): Promise<void>;
  readonly dataplane?: NodeDataplane;
}

export class BridgeNetwork implements PodNetwork {
  readonly kind = "bridge" as const;
  private podCIDR?: string;
  constructor(private readonly cfg: Omit<PodNetworkConfig, "podCIDR">) {}

  async setup(podCIDR: string): Promise<void> {
    this.podCIDR = podCIDR;
    await ensureNodeBridge({ ...this.cfg, podCIDR });
  }
  async attach(podNetns: string, uid: string, podIP: string): Promise<void> {
    await attachPodNetwork({ ...this.cfg, podCIDR: this.podCIDR! }, podNetns, uid, podIP);
  }
  async detach(_podNetns: string | undefined, uid: string): Promise<void> {
    if (this.podCIDR) await detachPodNetwork({ ...this.cfg, podCIDR: this.podCIDR }, uid);
  }
  setRemoteNodes(): void {
    // cross-node routing is the userspace dataplane's job; a lone bridge reaches its own pods only
  }
  async stop(): Promise<void> {}
}

export interface TunNetworkOptions {
  nodeName: string;
  nodeIP: string;
  /** namespace holding lab0 (undefined = the agent's own) */
  nodeNetns?: string;
  routes: string[];
  mtu: number;
  /** false: one node, no VXLAN socket */
  overlay: { address?: string; port?: number } | false;
  log: Logger;
  registry?: Registry;
  /** where kube-proxy loads the Service NAT rules (the node kernel's netfilter, emulated) */
  natSocket?: string;
  /** NetworkPolicy enforcement: the policies, pods and namespaces are watched through this client */
  policyClient?: KubeClient;
  /** where `klab observe` reads this node's flow events */
  flowsSocket?: string;
}

export class TunNetwork implements PodNetwork {
  readonly kind = "tun" as const;
  dataplane?: NodeDataplane;
  private lab0?: TunDevice;
  private remotes = new Map<string, string>();
  private prefix = 24;
  private natLoader?: Server;
  private listeners?: NodePortListeners;
  private flowsServer?: Server;
  private policy?: PolicyController;
  private faults?: FaultController;
  private cni?: CniConfig;

  constructor(private readonly o: TunNetworkOptions) {}

  async setup(podCIDR: string): Promise<void> {
    this.prefix = parseCIDR(podCIDR).prefix;
    this.dataplane = new NodeDataplane({
      nodeName: this.o.nodeName,
      nodeIP: this.o.nodeIP,
      podCIDR,
      overlay: this.o.overlay,
      logger: this.o.log,
      registry: this.o.registry,
    });
    await this.dataplane.start();
    if (this.o.natSocket && !this.natLoader) {
      const nat = new ServiceNat();
      this.dataplane.useServiceNat(nat);
      this.natLoader = await startNatLoader(nat, this.o.natSocket, this.o.log);
    }
    if (this.o.policyClient && !this.policy) {
      const stage = new NetworkPolicyStage();
      this.dataplane.setPolicy(stage);
      this.policy = new PolicyController({
        client: this.o.policyClient,
        stage,
        logger: this.o.log,
        registry: this.o.registry,
      });
      await this.policy.start();
    }
    if (this.o.policyClient && !this.faults) {
      // Injected faults (klab fault …) are one list for every node, so partitions act both ways.
      this.faults = new FaultController(this.o.policyClient, (f) => this.dataplane?.setFaults(f), this.o.log);
      await this.faults.start();
    }
    if (this.o.policyClient && !this.cni) {
      this.cni = new CniConfig(this.o.policyClient, this.o.mtu, this.o.log);
      await this.cni.start();
    }
    if (this.o.flowsSocket && !this.flowsServer) {
      this.flowsServer = await listenFlows(this.dataplane.flows, this.o.flowsSocket);
    }
    // the node's own processes (probes, kubectl exec curl from the node) reach pods through lab0
    const nsPath = this.o.nodeNetns ? netnsPath(this.o.nodeNetns) : undefined;
    this.lab0 = openTun("lab0", { netns: nsPath });
    await configureInterface({
      netns: this.o.nodeNetns,
      name: "lab0",
      mtu: this.o.mtu,
      routes: await this.routesOnlyLab0Reaches(),
    });
    this.dataplane.attachHost(this.lab0);
    const dev = await steerNodePorts(this.o.nodeNetns, this.o.nodeIP);
    if (dev) {
      this.o.log.info({ interface: dev }, "NodePort traffic steered into the dataplane");
      this.listeners = new NodePortListeners(this.o.nodeNetns, dev);
      this.listeners.start();
    }
  }

  /**
   * lab0 carries what only the dataplane reaches (pods, Services); a prefix the node already
   * routes elsewhere (its own network, the emulated internet via the edge) keeps its route, or
   * the dataplane would hand such packets back to the kernel and the kernel back to lab0.
   */
  private async routesOnlyLab0Reaches(): Promise<string[]> {
    const out: string[] = [];
    for (const r of this.o.routes) {
      if (r.startsWith("172.29.")) continue;
      const existing = await ip(this.o.nodeNetns, ["route", "show", "exact", r]).catch(() => "");
      if (existing.trim() && !/\bdev lab0\b/.test(existing)) continue;
      out.push(r);
    }
    return out;
  }

  async attach(podNetns: string, _uid: string, podIP: string): Promise<void> {
    const dp = this.dataplane!;
    // persistent, so a restarted agent re-attaches to the same eth0 and the pod keeps its address
    const tun = openTun("eth0", { persist: true, netns: netnsPath(podNetns) });
    await configurePodInterface(podNetns, {
      name: "eth0",
      cidr: `${podIP}/${this.prefix}`,
      mtu: this.cni?.podMtu() ?? this.o.mtu,
      routes: this.o.routes,
    });
    try {
      dp.attachPod(podIP, tun);
    } catch (err) {
      await tun.close();
      if (!String(err).includes("already attached")) throw err;
    }
  }

  async detach(_podNetns: string | undefined, _uid: string, podIP: string): Promise<void> {
    await this.dataplane?.detachPod(podIP).catch(() => undefined);
  }

  setRemoteNodes(nodes: Array<{ podCIDR: string; nodeIP: string }>): void {
    const dp = this.dataplane;
    if (!dp) return;
    const want = new Map(nodes.map((n) => [n.podCIDR, n.nodeIP]));
    for (const [cidr, ip] of this.remotes) if (want.get(cidr) !== ip) dp.removeRemoteNode(cidr, ip);
    for (const [cidr, ip] of want) if (this.remotes.get(cidr) !== ip) dp.addRemoteNode(cidr, ip);
    this.remotes = want;
  }

  async stop(): Promise<void> {
    // pod TUNs are persistent: closing our descriptors leaves every eth0 in place for the next agent
    this.policy?.stop();
    this.faults?.stop();
    this.cni?.stop();
    await new Promise<void>((r) => (this.flowsServer ? this.flowsServer.close(() => r()) : r()));
    this.listeners?.stop();
    await new Promise<void>((r) => (this.natLoader ? this.natLoader.close(() => r()) : r()));
    await this.dataplane?.stop();
  }
}
