import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import type { ConfigMap, Pod, PodStatus, Secret, Service } from "@klab/api";
import { allocate, newIPAM, release, type IPAMState } from "../core/ipam.ts";
import {
  formatResolvConf,
  parseResolvConf,
  podHostname,
  podHostsFile,
  podResolvConf,
} from "../core/dnsconfig.ts";
import type { EnvSources } from "../core/env.ts";
import { PodVolumes, VolumeError } from "./volumes.ts";
import { resolveImage } from "../images/catalog.ts";
import { createNetns, deleteNetns, podNetnsName } from "../sandbox/netns.ts";
import type { PodNetworkConfig } from "../sandbox/attach.ts";
import { startSandbox, stopSandbox } from "../sandbox/sandbox.ts";
import type { PodNetwork } from "../sandbox/pod-network.ts";
import type { PodRecord } from "./pod-worker.ts";
import type { StartTrace } from "./start-trace.ts";

export interface AgentConfig {
  nodeName: string;
  nodeIP: string;
  stateDir: string;
  clusterDNS: string[];
  clusterDomain: string;
  /** netns names are <prefix>-<node>-<uid8> */
  netnsPrefix: string;
  network: Omit<PodNetworkConfig, "podCIDR">;
  /** the node's resolver config (kubelet --resolv-conf) */
  resolvConfPath: string;
  hostsPath: string;
  /** launcher program -> shell command prefix that runs it (e.g. `node /state/bin/images.mjs agnhost`) */
  programs: Record<string, string>;
}

/** The API side the runtime needs; the shell implements it over @klab/client. */
export interface PodAPI {
  updatePodStatus(pod: Pod, status: PodStatus): Promise<Pod | undefined>;
  deletePodFinal(pod: Pod): Promise<void>;
  services(): Service[];
  configMap(ns: string, name: string): Promise<ConfigMap | undefined>;
  secret(ns: string, name: string): Promise<Secret | undefined>;
  /** TokenRequest for the pod's ServiceAccount, bound to the pod (projected token volumes) */
  serviceAccountToken?(
    pod: Pod,
    audiences: string[],
    expirationSeconds: number,
  ): Promise<{ token: string; expirationTimestamp: string }>;
  event(pod: Pod, type: "Normal" | "Warning", reason: string, message: string): void;
}

/** Node-wide pieces shared by every pod worker: IPAM, sandboxes, the API. */
export class NodeRuntime {
  private ipam?: IPAMState;
  private podCIDR?: string;

  constructor(
    readonly config: AgentConfig,
    readonly api: PodAPI,
    readonly log: Logger,
    readonly network: PodNetwork,
  ) {
    mkdirSync(join(config.stateDir, "pods"), { recursive: true });
  }

  private get ipamPath(): string {
    return join(this.config.stateDir, "ipam.json");
  }

  /** Called once the control plane assigned spec.podCIDR; keeps the persisted allocations. */
  async setPodCIDR(cidr: string): Promise<void> {
    this.podCIDR = cidr;
    let state: IPAMState | undefined;
    if (existsSync(this.ipamPath)) {
      try {
        state = JSON.parse(readFileSync(this.ipamPath, "utf8")) as IPAMState;
      } catch {
        state = undefined;
      }
    }
    this.ipam = state && state.cidr === cidr ? state : newIPAM(cidr);
    this.saveIPAM();
    await this.network.setup(cidr);
  }

  get ready(): boolean {
    return !!this.ipam;
  }

  private saveIPAM(): void {
    const tmp = this.ipamPath + ".tmp";
    writeFileSync(tmp, JSON.stringify(this.ipam));
    renameSync(tmp, this.ipamPath);
  }

  hostnameOf(pod: Pod): string {
    return podHostname(pod);
  }

  private launchersFor(pod: Pod): Record<string, string> {
    const out: Record<string, string> = {};
    for (const c of pod.spec?.containers ?? []) {
      const r = resolveImage(c);
      if (!r.ok) continue;
      for (const [name, program] of Object.entries(r.spec.launchers)) {
        const cmd = this.config.programs[program];
        if (cmd) out[name] = `#!/bin/sh\nexec ${cmd} "$@"\n`;
      }
    }
    return out;
  }

  /** CNI ADD + sandbox: netns, IP, eth0, kubelet's /etc files, the infra process. */
  async createSandbox(pod: Pod, rec: PodRecord, trace?: StartTrace): Promise<void> {
    if (!this.ipam || !this.podCIDR) throw new Error("node has no podCIDR yet");
    const hostNetwork = !!pod.spec?.hostNetwork;
    const uid = pod.metadata.uid!;
    const dir = join(this.config.stateDir, "pods", uid);
    // volumes first: a missing ConfigMap leaves nothing half made (kubelet's FailedMount)
    const volumes = this.volumesOf(pod, dir);
    await volumes.sync(pod);
    const mounts = volumes.mounts(pod);
    trace?.mark("volumes");
    if (!hostNetwork) {
      if (!rec.podIP) {
        const a = allocate(this.ipam, `${rec.namespace}/${rec.name}/${uid}`);
        this.ipam = a.state;
        this.saveIPAM();
        rec.podIP = a.ip;
      }
      rec.netns ??= podNetnsName(this.config.netnsPrefix, this.config.nodeName, uid);
      await createNetns(rec.netns);
      trace?.mark("netns");
      await this.network.attach(rec.netns, uid, rec.podIP);
      trace?.mark("network");
    } else {
      rec.podIP = this.config.nodeIP;
    }
    const nodeResolv = parseResolvConf(safeRead(this.config.resolvConfPath));
    const resolvConf = formatResolvConf(
      podResolvConf(pod, nodeResolv, {
        clusterDNS: this.config.clusterDNS,
        clusterDomain: this.config.clusterDomain,
      }),
    );
    const hosts = podHostsFile(pod, [rec.podIP], this.config.clusterDomain, safeRead(this.config.hostsPath));
    const hostname = hostNetwork ? this.config.nodeName : podHostname(pod);
    rec.sandbox = await startSandbox({
      dir,
      netns: hostNetwork ? undefined : rec.netns,
      hostname,
      files: { resolvConf, hosts, hostname },
      launchers: this.launchersFor(pod),
      mounts,
    });
    trace?.mark("sandbox");
    this.log.info(
      { pod: `${rec.namespace}/${rec.name}`, podIP: rec.podIP, netns: rec.netns },
      "pod sandbox ready",
    );
  }

  private volumesOf(pod: Pod, dir: string): PodVolumes {
    const api = this.api;
    return new PodVolumes(dir, {
      configMap: (ns, name) => api.configMap(ns, name),
      secret: (ns, name) => api.secret(ns, name),
      serviceAccountToken: (p, audiences, exp) => {
        if (!api.serviceAccountToken) throw new VolumeError("this kubelet has no TokenRequest client");
        return api.serviceAccountToken(p, audiences, exp);
      },
    });
  }

  /** kubelet's periodic volume sync: ConfigMap/Secret changes and token rotation reach the pod. */
  async refreshVolumes(pod: Pod): Promise<string[]> {
    return this.volumesOf(pod, join(this.config.stateDir, "pods", pod.metadata.uid!)).sync(pod);
  }

  /** After an agent restart: the pod's eth0 is still there; hand it to this agent's network again. */
  async reattach(rec: PodRecord): Promise<void> {
    if (rec.netns && rec.podIP) await this.network.attach(rec.netns, rec.uid, rec.podIP);
  }

  /** CNI DEL: infra process, namespace, veth, IP. */
  async destroySandbox(rec: PodRecord): Promise<void> {
    if (rec.sandbox) stopSandbox(rec.sandbox);
    if (rec.netns) {
      if (rec.podIP) await this.network.detach(rec.netns, rec.uid, rec.podIP);
      await deleteNetns(rec.netns);
    }
    if (this.ipam) {
      this.ipam = release(this.ipam, `${rec.namespace}/${rec.name}/${rec.uid}`);
      this.saveIPAM();
    }
  }

  async envSources(pod: Pod): Promise<EnvSources> {
    const ns = pod.metadata.namespace ?? "default";
    const configMaps = new Map<string, ConfigMap>();
    const secrets = new Map<string, Secret>();
    for (const c of pod.spec?.containers ?? []) {
      const names = [
        ...(c.envFrom ?? []).map((f) => ["cm", f.configMapRef?.name] as const),
        ...(c.envFrom ?? []).map((f) => ["secret", f.secretRef?.name] as const),
        ...(c.env ?? []).map((e) => ["cm", e.valueFrom?.configMapKeyRef?.name] as const),
        ...(c.env ?? []).map((e) => ["secret", e.valueFrom?.secretKeyRef?.name] as const),
      ];
      for (const [kind, name] of names) {
        if (!name) continue;
        if (kind === "cm" && !configMaps.has(name)) {
          const o = await this.api.configMap(ns, name);
          if (o) configMaps.set(name, o);
        }
        if (kind === "secret" && !secrets.has(name)) {
          const o = await this.api.secret(ns, name);
          if (o) secrets.set(name, o);
        }
      }
    }
    return { services: this.api.services(), configMaps, secrets };
  }

  updateStatus(pod: Pod, status: PodStatus): Promise<Pod | undefined> {
    return this.api.updatePodStatus(pod, status);
  }

  finalDelete(pod: Pod): Promise<void> {
    return this.api.deletePodFinal(pod);
  }

  event(pod: Pod, type: "Normal" | "Warning", reason: string, message: string): void {
    this.api.event(pod, type, reason, message);
  }
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
