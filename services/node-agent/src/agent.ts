import type https from "node:https";
import type { Logger } from "pino";
import { ApiError, Informer, KubeClient } from "@klab/client";
import type { ConfigMap, Event, Lease, Node, Pod, PodStatus, Secret, Service } from "@klab/api";
import { NodeRuntime, type AgentConfig, type PodAPI } from "./runtime/node-runtime.ts";
import { Kubelet } from "./runtime/kubelet.ts";
import { createKubeletServer } from "./kubelet/server.ts";
import { ensureServingCert } from "./node/pki.ts";
import { BridgeNetwork, TunNetwork, type PodNetwork } from "./sandbox/pod-network.ts";
import { natSocketPath } from "@klab/dataplane/nat/index.ts";
import { flowsSocketPath } from "@klab/dataplane/policy/index.ts";
import { gatherNodeFacts, microTime, nodeObject, nodeStatus, type NodeFacts } from "./node/node-status.ts";
import { randomBytes } from "node:crypto";
import { Gauge, Registry, collectDefaultMetrics } from "prom-client";
import { join } from "node:path";
import { FaultController, FAULTS_CONFIGMAP, FAULTS_NAMESPACE } from "@klab/dataplane/faults/controller.ts";
import { NodeFaults, runningContainerPid } from "./faults/node-faults.ts";
import { conntrackSocketPath, listenConntrack } from "@klab/dataplane/conntrack-socket.ts";

export interface NodeAgentOptions extends AgentConfig {
  podNetwork: "tun" | "bridge";
  overlay: boolean;
  kubeconfig: string;
  kubeletPort: number;
  kubeletBind: string;
  heartbeatSeconds: number;
}

const nowIso = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

/** The I/O shell: the API client, informers, heartbeats, the kubelet API server. */
export class NodeAgent {
  readonly client: KubeClient;
  readonly kubelet: Kubelet;
  readonly runtime: NodeRuntime;
  private facts: NodeFacts;
  private podInformer?: Informer<Pod>;
  private serviceInformer?: Informer<Service>;
  private nodeInformer?: Informer<Node>;
  readonly network: PodNetwork;
  private server?: https.Server;
  private timers: NodeJS.Timeout[] = [];
  private conditions?: Node["status"] extends infer S
    ? S extends { conditions?: infer C }
      ? C
      : never
    : never;
  private stopping = false;
  /** freeze-node: heartbeats are skipped and pod events wait until the fault is cleared. */
  private frozen = false;
  private frozenEvents: (() => void)[] = [];
  private faultController?: FaultController;
  private nodeFaults?: NodeFaults;
  private conntrackServer?: import("node:net").Server;
  readonly registry = new Registry();

  constructor(
    readonly opts: NodeAgentOptions,
    readonly log: Logger,
  ) {
    this.client = KubeClient.fromKubeconfig(opts.kubeconfig);
    this.facts = gatherNodeFacts(opts.nodeName, opts.nodeIP);
    this.network =
      opts.podNetwork === "tun"
        ? new TunNetwork({
            nodeName: opts.nodeName,
            nodeIP: opts.nodeIP,
            nodeNetns: opts.network.nodeNetns,
            routes: opts.network.routes,
            mtu: opts.network.mtu,
            overlay: opts.overlay ? { address: opts.nodeIP } : false,
            log,
            registry: this.registry,
            natSocket: natSocketPath(opts.stateDir),
            policyClient: this.client,
            flowsSocket: flowsSocketPath(opts.stateDir),
          })
        : new BridgeNetwork(opts.network);
    this.runtime = new NodeRuntime(opts, this.podAPI(), log, this.network);
    this.kubelet = new Kubelet(this.runtime);
    collectDefaultMetrics({ register: this.registry });
    const kubelet = this.kubelet;
    new Gauge({
      name: "kubelet_running_pods",
      help: "Number of pods that have a running pod sandbox",
      registers: [this.registry],
      collect() {
        this.set(kubelet.pods.length);
      },
    });
  }

  private podAPI(): PodAPI {
    const c = this.client;
    return {
      updatePodStatus: async (pod: Pod, status: PodStatus) => {
        try {
          return await c.patch<Pod>(
            "v1",
            "pods",
            pod.metadata.namespace,
            pod.metadata.name!,
            { status },
            "merge",
            "status",
          );
        } catch (err) {
          if (err instanceof ApiError && err.code === 404) return undefined;
          throw err;
        }
      },
      deletePodFinal: async (pod: Pod) => {
        try {
          await c.request(
            "DELETE",
            `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`,
            {
              body: {
                kind: "DeleteOptions",
                apiVersion: "v1",
                gracePeriodSeconds: 0,
                preconditions: { uid: pod.metadata.uid },
              },
            },
          );
        } catch (err) {
          if (err instanceof ApiError && (err.code === 404 || err.code === 409)) return;
          throw err;
        }
      },
      services: () => this.serviceInformer?.list() ?? [],
      configMap: (ns, name) => c.get<ConfigMap>("v1", "configmaps", ns, name),
      secret: (ns, name) => c.get<Secret>("v1", "secrets", ns, name),
      serviceAccountToken: async (pod, audiences, expirationSeconds) => {
        const sa = pod.spec?.serviceAccountName ?? "default";
        const res = await c.request<{ status: { token: string; expirationTimestamp: string } }>(
          "POST",
          `/api/v1/namespaces/${encodeURIComponent(pod.metadata.namespace ?? "default")}/serviceaccounts/${encodeURIComponent(sa)}/token`,
          {
            body: {
              apiVersion: "authentication.k8s.io/v1",
              kind: "TokenRequest",
              spec: {
                audiences,
                expirationSeconds,
                boundObjectRef: {
                  kind: "Pod",
                  apiVersion: "v1",
                  name: pod.metadata.name,
                  uid: pod.metadata.uid,
                },
              },
            },
          },
        );
        return res.status;
      },
      event: (pod, type, reason, message) => {
        const t = nowIso();
        const ev: Event = {
          apiVersion: "v1",
          kind: "Event",
          metadata: {
            name: `${pod.metadata.name}.${randomBytes(8).toString("hex")}`,
            namespace: pod.metadata.namespace,
          },
          involvedObject: {
            apiVersion: "v1",
            kind: "Pod",
            name: pod.metadata.name,
            namespace: pod.metadata.namespace,
            uid: pod.metadata.uid,
          },
          reason,
          message,
          type,
          source: { component: "kubelet", host: this.opts.nodeName },
          firstTimestamp: t,
          lastTimestamp: t,
          count: 1,
          reportingComponent: "kubelet",
          reportingInstance: this.opts.nodeName,
        } as Event;
        c.create(ev).catch(() => undefined);
      },
    };
  }

  async start(): Promise<void> {
    const cert = await ensureServingCert(this.opts.stateDir, this.opts.nodeName, this.opts.nodeIP);
    const conn = this.client.connection;
    this.server = createKubeletServer({
      kubelet: this.kubelet,
      log: this.log,
      cert: cert.certPem,
      key: cert.keyPem,
      tokens: conn.token ? [conn.token] : [],
      clientCA: conn.caPem,
      metrics: () => this.registry.metrics(),
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(this.opts.kubeletPort, this.opts.kubeletBind, () => resolve());
    });
    const addr = this.server.address();
    if (typeof addr === "object" && addr) this.facts.kubeletPort = addr.port;
    this.log.info({ port: this.facts.kubeletPort }, "kubelet API listening");

    await this.register();
    const cidr = await this.waitForPodCIDR();
    await this.runtime.setPodCIDR(cidr);
    // `klab conntrack` reads the dataplane's table here, beside nat.sock and flows.sock
    if (this.network.dataplane)
      this.conntrackServer = await listenConntrack(
        this.network.dataplane.conntrack,
        conntrackSocketPath(this.opts.stateDir),
      );
    await this.postNodeStatus();
    this.kubelet.loadFromDisk();

    this.nodeInformer = new Informer<Node>(this.client, "v1", "nodes");
    const syncRemotes = () =>
      this.network.setRemoteNodes(
        (this.nodeInformer?.list() ?? []).flatMap((n) => {
          const cidr = n.spec?.podCIDR;
          const ip = n.status?.addresses?.find((a) => a.type === "InternalIP")?.address;
          return n.metadata.name !== this.opts.nodeName && cidr && ip ? [{ podCIDR: cidr, nodeIP: ip }] : [];
        }),
      );
    for (const ev of ["add", "update", "delete"] as const) this.nodeInformer.on(ev, syncRemotes);
    await this.nodeInformer.start();
    syncRemotes();
    this.serviceInformer = new Informer<Service>(this.client, "v1", "services");
    await this.serviceInformer.start();
    this.podInformer = new Informer<Pod>(this.client, "v1", "pods", {
      fieldSelector: `spec.nodeName=${this.opts.nodeName}`,
    });
    const reconcile = (fn: () => void) => (this.frozen ? this.frozenEvents.push(fn) : fn());
    this.podInformer.on("add", (p) => reconcile(() => this.kubelet.upsert(p)));
    this.podInformer.on("update", (p) => reconcile(() => this.kubelet.upsert(p)));
    this.podInformer.on("delete", (p) => reconcile(() => void this.kubelet.remove(p)));
    this.podInformer.on("error", (e) => this.log.warn({ err: String(e) }, "pod watch error"));
    await this.podInformer.start();
    await this.kubelet.cleanupOrphans();

    const every = this.opts.heartbeatSeconds * 1000;
    this.timers.push(
      setInterval(
        () =>
          this.frozen ||
          void this.renewLease().catch((e) => this.log.warn({ err: String(e) }, "lease renew failed")),
        every,
      ),
    );
    this.timers.push(
      setInterval(
        () =>
          this.frozen ||
          void this.postNodeStatus().catch((e) => this.log.warn({ err: String(e) }, "node status failed")),
        every,
      ),
    );
    await this.startNodeFaults();
    await this.renewLease().catch((e) => this.log.warn({ err: String(e) }, "lease renew failed"));
    this.log.info({ node: this.opts.nodeName, podCIDR: cidr }, "node agent ready");
  }

  /** The node faults of kube-system/klab-faults (faults/node-faults.ts), kept as they change. */
  private async startNodeFaults(): Promise<void> {
    const podDir = (uid: string) => join(this.opts.stateDir, "pods", uid);
    this.nodeFaults = new NodeFaults(
      {
        nodeIP: this.opts.nodeIP,
        containerPid: (ns, name, container) => {
          const w = this.kubelet.find(ns, name);
          const c = container ?? w?.currentPod.spec?.containers?.[0]?.name;
          return w && c ? runningContainerPid(podDir(w.uid), c) : undefined;
        },
        kubeProxyPids: () =>
          this.kubelet.pods.flatMap((w) => {
            const m = w.currentPod.metadata;
            if (m.namespace !== "kube-system" || m.labels?.["k8s-app"] !== "kube-proxy") return [];
            const pid = runningContainerPid(podDir(w.uid), "kube-proxy");
            return pid ? [pid] : [];
          }),
        setFrozen: (frozen) => {
          this.frozen = frozen;
          if (frozen) return;
          for (const fn of this.frozenEvents.splice(0)) fn();
          void this.renewLease().catch(() => undefined);
          void this.postNodeStatus().catch(() => undefined);
        },
        conntrack: () => this.network.dataplane?.conntrack,
        removeFault: async (id) => {
          await this.client.patch("v1", "configmaps", FAULTS_NAMESPACE, FAULTS_CONFIGMAP, {
            data: { [id]: null },
          });
        },
        signal: (pid, sig) => {
          try {
            process.kill(-pid, sig);
          } catch {
            process.kill(pid, sig);
          }
        },
      },
      this.log,
      this.registry,
    );
    this.faultController = new FaultController(this.client, (f) => this.nodeFaults?.apply(f), this.log);
    await this.faultController.start();
  }

  get kubeletAddress(): { port: number } | undefined {
    const a = this.server?.address();
    return typeof a === "object" && a ? { port: a.port } : undefined;
  }

  private async register(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const existing = await this.client.get<Node>("v1", "nodes", undefined, this.opts.nodeName);
        if (!existing) await this.client.create(nodeObject(this.facts));
        await this.postNodeStatus();
        this.log.info({ node: this.opts.nodeName }, "node registered");
        return;
      } catch (err) {
        if (this.stopping) throw err;
        this.log.warn({ err: String(err), attempt }, "node registration failed, retrying");
        await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** attempt, 7000)));
      }
    }
  }

  private async waitForPodCIDR(): Promise<string> {
    for (;;) {
      const node = await this.client
        .get<Node>("v1", "nodes", undefined, this.opts.nodeName)
        .catch(() => undefined);
      const cidr = node?.spec?.podCIDR ?? node?.spec?.podCIDRs?.[0];
      if (cidr) return cidr;
      if (this.stopping) throw new Error("stopped before a podCIDR was assigned");
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  private async postNodeStatus(): Promise<void> {
    const status = nodeStatus(this.facts, this.runtime.ready, nowIso(), this.conditions);
    this.conditions = status.conditions;
    await this.client.patch("v1", "nodes", undefined, this.opts.nodeName, { status }, "merge", "status");
  }

  private async renewLease(): Promise<void> {
    const ns = "kube-node-lease";
    const name = this.opts.nodeName;
    const renewTime = microTime(new Date());
    const lease = await this.client.get<Lease>("coordination.k8s.io/v1", "leases", ns, name);
    if (!lease) {
      const node = await this.client.get<Node>("v1", "nodes", undefined, name);
      await this.client.create<Lease>({
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: {
          name,
          namespace: ns,
          ownerReferences: node?.metadata.uid
            ? [{ apiVersion: "v1", kind: "Node", name, uid: node.metadata.uid }]
            : undefined,
        },
        spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime },
      });
      return;
    }
    await this.client.update<Lease>({
      ...lease,
      spec: { ...lease.spec, holderIdentity: name, leaseDurationSeconds: 40, renewTime },
    });
  }

  /** SIGTERM: stop watching and serving; pods keep running and are adopted by the next agent. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    this.faultController?.stop();
    this.nodeFaults?.stop();
    this.podInformer?.stop();
    this.serviceInformer?.stop();
    this.nodeInformer?.stop();
    this.kubelet.stop();
    await new Promise<void>((r) => (this.conntrackServer ? this.conntrackServer.close(() => r()) : r()));
    await this.network.stop().catch(() => undefined);
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server?.closeAllConnections?.();
    await this.client.close();
  }
}
