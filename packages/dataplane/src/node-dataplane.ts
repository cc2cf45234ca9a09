/**
 * The I/O shell around the pipeline: the node's TUN devices (one per pod, plus `lab0` for the
 * node's own processes) and the overlay's UDP socket. Packets are read in batches from each TUN,
 * run through the pipeline, and written out in batches per device.
 */
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { UdpSocket, type TunDevice } from "@klab/tun";
import { ipToString, parseIP } from "./ip.ts";
import type { ConntrackFlush, ServiceNat } from "./nat/service-nat.ts";
import { IPPROTO_UDP } from "./packet.ts";
import { registerDataplaneMetrics } from "./metrics.ts";
import { Pipeline, type Ingress, type Output, type PipelineConfig } from "./pipeline.ts";
import type { PolicyStage, ServiceNatStage } from "./stages.ts";
import { decapsulate, encapsulate, VXLAN_PORT } from "./vxlan.ts";
import type { Fault } from "./faults/model.ts";
import { FaultStage, registerFaultMetrics, type FaultMetrics } from "./faults/stage.ts";

export interface NodeDataplaneOptions extends PipelineConfig {
  /**
   * The overlay socket: bound on `address` (default the node IP) and `port` (default 8472).
   * `false` runs a single node with no overlay.
   */
  overlay?: { address?: string; port?: number } | false;
  logger?: Logger;
  /** Register the dataplane's metrics here (klab_dataplane_*). */
  registry?: Registry;
  /** How often expired conntrack entries are swept. Default 1000 ms. */
  sweepIntervalMs?: number;
}

export class NodeDataplane {
  readonly pipeline: Pipeline;
  private readonly opts: NodeDataplaneOptions;
  private readonly log?: Logger;
  private readonly pods = new Map<number, TunDevice>();
  private host: TunDevice | undefined;
  private socket: UdpSocket | undefined;
  private overlayPort = VXLAN_PORT;
  private readonly peers = new Set<number>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly pendingPods = new Map<number, Buffer[]>();
  private pendingHost: Buffer[] = [];
  private pendingOverlay: Buffer[] = [];
  private pendingOverlayTo: number[] = [];
  private readonly out: Output;
  /** The Output the pipeline writes to: `out` itself unless link faults are set. */
  private active: Output;
  private faultStage: FaultStage | undefined;
  private readonly faultMetrics?: FaultMetrics;

  constructor(opts: NodeDataplaneOptions) {
    this.opts = opts;
    this.log = opts.logger;
    this.pipeline = new Pipeline(opts);
    if (opts.registry)
      registerDataplaneMetrics(opts.registry, this.pipeline.stats, () => this.pipeline.conntrack.size);
    this.out = {
      toPod: (podIP, pkt) => {
        let q = this.pendingPods.get(podIP);
        if (!q) this.pendingPods.set(podIP, (q = []));
        q.push(pkt);
      },
      toHost: (pkt) => this.pendingHost.push(pkt),
      toOverlay: (nodeIP, pkt) => this.sendOverlay(nodeIP, pkt),
    };
    this.active = this.out;
    if (opts.registry) this.faultMetrics = registerFaultMetrics(opts.registry);
  }

  /** The faults this node applies (faults/): replaces the previous set; [] removes them all. */
  setFaults(faults: readonly Fault[]): void {
    this.faultStage?.stop();
    this.faultStage = undefined;
    this.active = this.out;
    if (faults.length === 0) return;
    const stage = new FaultStage(faults, {
      nodeName: this.opts.nodeName,
      nodeIP: this.opts.nodeIP,
      isLocalPod: (ip) => this.pods.has(ip),
      flush: () => this.flush(),
      flows: this.pipeline.flows,
      metrics: this.faultMetrics,
      conntrack: this.pipeline.conntrack,
    });
    this.faultStage = stage;
    this.active = stage.wrap(this.out);
  }

  get faults(): readonly Fault[] {
    return this.faultStage?.faults ?? [];
  }

  get flows() {
    return this.pipeline.flows;
  }
  get conntrack() {
    return this.pipeline.conntrack;
  }
  get stats() {
    return this.pipeline.stats;
  }
  get routes() {
    return this.pipeline.routes;
  }

  /** Bind the overlay socket and start sweeping conntrack. */
  async start(): Promise<void> {
    const interval = this.opts.sweepIntervalMs ?? 1000;
    this.sweepTimer = setInterval(() => this.pipeline.conntrack.sweep(), interval);
    this.sweepTimer.unref();
    if (this.opts.overlay === false) return;
    const address = this.opts.overlay?.address ?? this.opts.nodeIP;
    this.overlayPort = this.opts.overlay?.port ?? VXLAN_PORT;
    // A socket served by native threads: no recvfrom/sendto per datagram on the event loop.
    const socket = new UdpSocket(address, this.overlayPort);
    socket.on("error", (err: Error) => this.log?.error({ err }, "overlay socket error"));
    socket.onDatagrams((datagrams, from) => this.receiveOverlay(datagrams, from));
    this.socket = socket;
    this.log?.info({ address, port: this.overlayPort }, "overlay listening");
  }

  /** Stop reading every device (pod TUNs and lab0 are closed) and close the overlay socket. */
  async stop(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.faultStage?.stop();
    const closing = [...this.pods.values(), ...(this.host ? [this.host] : [])].map((t) => t.close());
    this.pods.clear();
    this.host = undefined;
    await Promise.all(closing);
    const socket = this.socket;
    this.socket = undefined;
    await socket?.close();
  }

  /** Attach a pod: its TUN (the other end of its eth0) and its IP. */
  attachPod(podIP: string, tun: TunDevice): void {
    const ip = parseIP(podIP);
    if (this.pods.has(ip)) throw new Error(`pod IP ${podIP} is already attached to this node's dataplane`);
    this.pods.set(ip, tun);
    this.pipeline.addPod(podIP);
    const ingress: Ingress = { kind: "pod", podIP: ip };
    tun.on("error", (err: Error) => this.log?.warn({ err, podIP }, "pod TUN failed"));
    tun.onPackets((packets) => this.receiveBatch(packets, ingress));
    this.log?.debug({ podIP, dev: tun.name }, "pod attached");
  }

  /** Detach a pod and close its TUN (a persistent device stays for a later re-attach). */
  async detachPod(podIP: string): Promise<void> {
    const ip = parseIP(podIP);
    const tun = this.pods.get(ip);
    this.pods.delete(ip);
    this.pipeline.removePod(podIP);
    await tun?.close();
  }

  /** Attach the node's `lab0` TUN, through which the node's own processes reach pods and Services. */
  attachHost(tun: TunDevice): void {
    if (this.host) throw new Error("a host (lab0) TUN is already attached");
    this.host = tun;
    const ingress: Ingress = { kind: "node" };
    tun.on("error", (err: Error) => this.log?.warn({ err }, "lab0 TUN failed"));
    tun.onPackets((packets) => this.receiveBatch(packets, ingress));
  }

  /** Route another node's pod CIDR over the overlay to its node IP. */
  addRemoteNode(podCIDR: string, nodeIP: string): void {
    this.pipeline.addRemoteNode(podCIDR, nodeIP);
    this.peers.add(parseIP(nodeIP));
  }

  removeRemoteNode(podCIDR: string, nodeIP?: string): void {
    this.pipeline.removeRemoteNode(podCIDR);
    if (nodeIP) this.peers.delete(parseIP(nodeIP));
  }

  addLocalAddress(ip: string): void {
    this.pipeline.addLocalAddress(ip);
  }

  removeLocalAddress(ip: string): void {
    this.pipeline.removeLocalAddress(ip);
  }

  setServiceNat(stage: ServiceNatStage | undefined): void {
    this.pipeline.serviceNat = stage;
  }

  /**
   * Use kube-proxy's Service NAT (nat/): its rules decide new connections, the addresses it holds
   * in IPVS mode (kube-ipvs0) become the node's own (they answer ping), and the conntrack
   * entries a load names are flushed (the stale-UDP cleanup).
   */
  useServiceNat(nat: ServiceNat): void {
    this.setServiceNat(nat);
    for (const ip of nat.ipvsStage.heldAddresses()) this.addLocalAddress(ip);
    nat.onHeldAddressesChanged = (added, removed) => {
      for (const ip of added) this.addLocalAddress(ip);
      for (const ip of removed) this.removeLocalAddress(ip);
    };
    nat.onConntrackFlush = (flush) => {
      const n = this.flushConntrack(flush);
      this.log?.debug({ flush, entries: n }, "conntrack entries flushed");
    };
  }

  /**
   * Delete UDP conntrack entries towards endpoints ("ip:port", the DNAT target) or Services
   * ("ip:port" original destination; ":port" for any of the node's addresses). Returns how many.
   */
  flushConntrack(flush: ConntrackFlush): number {
    const endpoints = new Set(flush.udpEndpoints ?? []);
    const services = new Set<string>();
    const anyLocal = new Set<number>();
    for (const s of flush.udpServiceIPs ?? []) {
      if (s.startsWith(":")) anyLocal.add(Number(s.slice(1)));
      else services.add(s);
    }
    return this.pipeline.conntrack.flush((e) => {
      if (e.original.proto !== IPPROTO_UDP) return false;
      if (endpoints.has(`${ipToString(e.reply.src)}:${e.reply.srcPort}`)) return true;
      const dst = ipToString(e.original.dst);
      if (services.has(`${dst}:${e.original.dstPort}`)) return true;
      return anyLocal.has(e.original.dstPort) && this.pipeline.isLocalAddress(dst);
    });
  }

  setPolicy(stage: PolicyStage | undefined): void {
    this.pipeline.policy = stage;
  }

  /** Run packets that entered somewhere through the pipeline (also usable directly by tests). */
  receiveBatch(packets: Buffer[], ingress: Ingress): void {
    const faults = this.faultStage;
    if (faults === undefined) for (const pkt of packets) this.pipeline.process(pkt, ingress, this.out);
    else {
      faults.source = ingress.kind;
      for (const pkt of packets)
        if (!faults.ingress(pkt, ingress, this.out)) this.pipeline.process(pkt, ingress, this.active);
    }
    this.flush();
  }

  private receiveOverlay(datagrams: Buffer[], from: Uint32Array): void {
    const stats = this.pipeline.stats;
    for (let i = 0; i < datagrams.length; i++) {
      const fromIP = from[i];
      if (!this.peers.has(fromIP)) {
        stats.drop("overlay-unknown-peer");
        continue;
      }
      const d = decapsulate(datagrams[i]);
      if ("error" in d) {
        stats.drop(d.error);
        continue;
      }
      if (this.faultStage) this.faultStage.source = "overlay";
      this.pipeline.process(d.inner, { kind: "overlay", fromNodeIP: fromIP }, this.active);
    }
    this.flush();
  }

  private sendOverlay(nodeIP: number, pkt: Buffer): void {
    if (!this.socket) {
      this.pipeline.stats.drop("overlay-down");
      return;
    }
    this.pendingOverlay.push(encapsulate(pkt, this.pipeline.nodeIP, nodeIP));
    this.pendingOverlayTo.push(nodeIP);
  }

  private flush(): void {
    for (const [podIP, q] of this.pendingPods) {
      if (q.length === 0) continue;
      const tun = this.pods.get(podIP);
      if (tun) tun.write(q);
      else this.pipeline.stats.drop("pod-detached");
      this.pendingPods.set(podIP, []);
    }
    if (this.pendingHost.length > 0) {
      if (this.host) this.host.write(this.pendingHost);
      else for (let i = 0; i < this.pendingHost.length; i++) this.pipeline.stats.drop("no-host-interface");
      this.pendingHost = [];
    }
    if (this.pendingOverlay.length > 0) {
      const sent =
        this.socket?.sendTo(this.pendingOverlay, Uint32Array.from(this.pendingOverlayTo), this.overlayPort) ??
        0;
      for (let i = sent; i < this.pendingOverlay.length; i++) this.pipeline.stats.drop("overlay-queue-full");
      this.pendingOverlay = [];
      this.pendingOverlayTo = [];
    }
  }
}
