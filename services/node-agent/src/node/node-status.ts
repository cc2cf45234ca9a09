import os from "node:os";
import { readFileSync } from "node:fs";
import type { Condition, Node, NodeStatus } from "@klab/api";

export const KUBELET_VERSION = "v1.32.0";
export const RUNTIME_VERSION = "klab://0.1.0";
export const KUBELET_PORT = 10250;

export interface NodeFacts {
  nodeName: string;
  nodeIP: string;
  cpus: number;
  memoryKi: number;
  ephemeralStorageKi: number;
  maxPods: number;
  kernelVersion: string;
  osImage: string;
  machineID: string;
  bootID: string;
  /** where the kubelet API listens (status.daemonEndpoints) */
  kubeletPort: number;
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return fallback;
  }
}

/** What the node reports about itself, read once from the machine it runs on. */
export function gatherNodeFacts(nodeName: string, nodeIP: string): NodeFacts {
  const osRelease = readOr("/etc/os-release", "");
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(osRelease)?.[1] ?? "Linux";
  return {
    nodeName,
    nodeIP,
    cpus: os.cpus().length,
    memoryKi: Math.floor(os.totalmem() / 1024),
    ephemeralStorageKi: 20_509_264,
    maxPods: 110,
    kernelVersion: os.release(),
    osImage: pretty,
    machineID: readOr("/etc/machine-id", "").padEnd(32, "0").slice(0, 32),
    bootID: readOr("/proc/sys/kernel/random/boot_id", "00000000-0000-0000-0000-000000000000"),
    kubeletPort: KUBELET_PORT,
  };
}

/** The Node object kubelet registers (labels, addresses, capacity, nodeInfo); status conditions apart. */
export function nodeObject(f: NodeFacts): Node {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: f.nodeName,
      labels: {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": f.nodeName,
        "kubernetes.io/os": "linux",
      },
      annotations: {
        "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
      },
    },
    spec: {},
  };
}

/**
 * The node's status as kubelet posts it. Ready waits for the network: until the podCIDR arrives
 * the pod network cannot be configured, and kubelet says so in the Ready condition.
 */
export function nodeStatus(
  f: NodeFacts,
  networkReady: boolean,
  now: string,
  previous?: Condition[],
): NodeStatus {
  const memory = `${f.memoryKi}Ki`;
  const allocMemory = `${Math.max(f.memoryKi - 102_400, 0)}Ki`;
  const cond = (type: string, status: "True" | "False", reason: string, message: string): Condition => {
    const prev = previous?.find((c) => c.type === type);
    return {
      type,
      status,
      lastHeartbeatTime: now,
      lastTransitionTime:
        prev && prev.status === status && prev.lastTransitionTime ? prev.lastTransitionTime : now,
      reason,
      message,
    };
  };
  return {
    capacity: {
      cpu: String(f.cpus),
      "ephemeral-storage": `${f.ephemeralStorageKi}Ki`,
      "hugepages-1Gi": "0",
      "hugepages-2Mi": "0",
      memory,
      pods: String(f.maxPods),
    },
    allocatable: {
      cpu: String(f.cpus),
      "ephemeral-storage": `${Math.floor(f.ephemeralStorageKi * 0.9)}`,
      "hugepages-1Gi": "0",
      "hugepages-2Mi": "0",
      memory: allocMemory,
      pods: String(f.maxPods),
    },
    conditions: [
      cond(
        "MemoryPressure",
        "False",
        "KubeletHasSufficientMemory",
        "kubelet has sufficient memory available",
      ),
      cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
      cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
      networkReady
        ? cond("Ready", "True", "KubeletReady", "kubelet is posting ready status")
        : cond(
            "Ready",
            "False",
            "KubeletNotReady",
            "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: no podCIDR assigned to this node yet",
          ),
    ],
    addresses: [
      { type: "InternalIP", address: f.nodeIP },
      { type: "Hostname", address: f.nodeName },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: f.kubeletPort } },
    nodeInfo: {
      machineID: f.machineID,
      systemUUID: f.machineID.replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, "$1-$2-$3-$4-$5"),
      bootID: f.bootID,
      kernelVersion: f.kernelVersion,
      osImage: f.osImage,
      containerRuntimeVersion: RUNTIME_VERSION,
      kubeletVersion: KUBELET_VERSION,
      kubeProxyVersion: KUBELET_VERSION,
      operatingSystem: "linux",
      architecture: "amd64",
    },
  };
}

/** RFC3339 with microseconds, as a Lease's MicroTime is written. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}
