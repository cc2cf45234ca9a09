/**
 * The pod worker's terminate path with real processes: a hostNetwork pod (its own mount namespace
 * and root, no network namespace) whose container ignores SIGTERM. The API side is an in-memory
 * PodAPI, the seam the agent's shell implements over @klab/client.
 */
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import type { ConfigMap, Pod, PodStatus } from "@klab/api";
import { describeWith } from "../../../../test/support/prereq.ts";
import { until } from "../../../../test/support/wait.ts";
import { NodeRuntime, type PodAPI } from "./node-runtime.ts";
import { PodWorker, terminationGracePeriod } from "./pod-worker.ts";
import { killPodProcesses, processesRootedIn } from "./reap.ts";
import type { PodNetwork } from "../sandbox/pod-network.ts";

const stateDir = mkdtempSync(join(tmpdir(), "klab-podworker-"));
const roots: string[] = [];

afterAll(async () => {
  for (const r of roots) await killPodProcesses(r);
  rmSync(stateDir, { recursive: true, force: true });
});

/** hostNetwork pods never attach to the pod network; setting a podCIDR is all the runtime asks. */
class NoPodNetwork implements PodNetwork {
  readonly kind = "bridge" as const;
  async setup(): Promise<void> {}
  async attach(): Promise<void> {
    throw new Error("a hostNetwork pod has no pod network");
  }
  async detach(): Promise<void> {}
  setRemoteNodes(): void {}
  async stop(): Promise<void> {}
}

class MemoryAPI implements PodAPI {
  finalDeletes: string[] = [];
  events: string[] = [];
  async updatePodStatus(pod: Pod, status: PodStatus): Promise<Pod | undefined> {
    return { ...pod, status };
  }
  async deletePodFinal(pod: Pod): Promise<void> {
    this.finalDeletes.push(pod.metadata.uid!);
  }
  services() {
    return [];
  }
  async configMap(_ns: string, _name: string): Promise<ConfigMap | undefined> {
    return undefined;
  }
  async secret() {
    return undefined;
  }
  event(_pod: Pod, _type: string, reason: string, message: string): void {
    this.events.push(`${reason}: ${message}`);
  }
}

async function runtime(): Promise<{ rt: NodeRuntime; api: MemoryAPI }> {
  const api = new MemoryAPI();
  const rt = new NodeRuntime(
    {
      nodeName: "node-1",
      nodeIP: "127.0.0.1",
      stateDir,
      clusterDNS: ["10.96.0.10"],
      clusterDomain: "cluster.local",
      netnsPrefix: `kpw${process.pid % 1000}`,
      network: { bridge: "unused", routes: [], mtu: 1500 },
      resolvConfPath: "/etc/resolv.conf",
      hostsPath: "/etc/hosts",
      programs: {},
    },
    api,
    pino({ level: "silent" }),
    new NoPodNetwork(),
  );
  await rt.setPodCIDR("10.244.9.0/24");
  return { rt, api };
}

/** A pod whose container ignores SIGTERM and has a child that left its process group. */
function stubbornPod(): Pod {
  const uid = randomUUID();
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: `stubborn-${uid.slice(0, 5)}`, namespace: "default", uid, resourceVersion: "1" },
    spec: {
      nodeName: "node-1",
      hostNetwork: true,
      terminationGracePeriodSeconds: 300,
      containers: [
        {
          name: "app",
          image: "busybox",
          command: ["sh", "-c", "trap '' TERM; setsid sleep 1000 & sleep 1000 & wait"],
        },
      ],
    },
  };
}

/** Starts the pod and waits for its sandbox and container processes (sandbox, sh, two sleeps). */
async function running(w: PodWorker, root: string): Promise<number[]> {
  w.kick();
  return until(
    "the pod's processes",
    60_000,
    async () => {
      const p = processesRootedIn(root);
      return w.containerRunning("app") && p.length >= 4 ? p : undefined;
    },
    50,
  );
}

describeWith({ root: true, tools: ["unshare", "nsenter", "mount"] }, "pod worker termination", () => {
  it("takes the grace period from the deletion: none for a pod force-deleted from the API", () => {
    const pod = stubbornPod();
    expect(terminationGracePeriod(pod, true)).toBe(0);
    expect(terminationGracePeriod(pod, false)).toBe(300);
    const graceful = { ...pod, metadata: { ...pod.metadata, deletionGracePeriodSeconds: 1 } };
    expect(terminationGracePeriod(graceful, true)).toBe(1);
    expect(terminationGracePeriod(graceful, false)).toBe(1);
  });

  for (const grace of [0, 1]) {
    it(`leaves no process of the pod after a delete with grace ${grace} s`, async () => {
      const { rt, api } = await runtime();
      const pod = stubbornPod();
      const w = new PodWorker(pod, rt);
      const root = join(w.dir, "root");
      roots.push(root);
      await running(w, root);
      // a forced delete arrives as the pod's removal with no deletion grace period; a graceful
      // one as an update carrying deletionTimestamp and deletionGracePeriodSeconds
      if (grace === 0) await w.terminate(pod);
      else {
        w.update({
          ...pod,
          metadata: {
            ...pod.metadata,
            deletionTimestamp: new Date().toISOString(),
            deletionGracePeriodSeconds: grace,
          },
        });
        await until("the pod's final delete", 60_000, async () => api.finalDeletes[0], 50);
      }
      expect(processesRootedIn(root)).toEqual([]);
      expect(existsSync(w.dir)).toBe(false);
      expect(api.finalDeletes).toEqual([pod.metadata.uid]);
      expect(api.events).toContain("Killing: Stopping container app");
      // two waits of up to 60 s each: under a loaded CI machine the default 60 s was too short once
    }, 180_000);
  }

  it("starts nothing more once a deletion arrives during the pod's first sync", async () => {
    const { rt, api } = await runtime();
    // the sandbox's volumes wait for this ConfigMap read, so the deletion lands mid-sync
    let release = () => {};
    let asked = false;
    api.configMap = () =>
      new Promise<ConfigMap | undefined>((r) => {
        asked = true;
        release = () =>
          r({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cfg" }, data: { a: "1" } });
      });
    const pod = stubbornPod();
    pod.spec!.volumes = [{ name: "cfg", configMap: { name: "cfg" } }];
    const w = new PodWorker(pod, rt);
    const root = join(w.dir, "root");
    roots.push(root);
    w.kick();
    await until("the sync to read the ConfigMap", 30_000, async () => (asked ? true : undefined), 10);
    const terminated = w.terminate(pod);
    release();
    await terminated;
    // whatever the worker still had queued has run too
    await (w as unknown as { queue: Promise<void> }).queue;
    expect(processesRootedIn(root)).toEqual([]);
    expect(existsSync(w.dir)).toBe(false);
    // later kicks (a container's exit, a timer) find the worker stopped
    w.kick();
    await w.terminate(pod);
    expect(processesRootedIn(root)).toEqual([]);
    expect(api.finalDeletes).toEqual([pod.metadata.uid]);
  });

  it("shortens a graceful termination when a forced delete follows", async () => {
    const { rt, api } = await runtime();
    const pod = stubbornPod();
    const w = new PodWorker(pod, rt);
    const root = join(w.dir, "root");
    roots.push(root);
    await running(w, root);
    w.update({
      ...pod,
      metadata: {
        ...pod.metadata,
        deletionTimestamp: new Date().toISOString(),
        deletionGracePeriodSeconds: 300,
      },
    });
    await until(
      "the stop signal",
      30_000,
      async () => (api.events.includes("Killing: Stopping container app") ? true : undefined),
      50,
    );
    await w.terminate(pod);
    expect(processesRootedIn(root)).toEqual([]);
    expect(api.finalDeletes).toEqual([pod.metadata.uid]);
  });
});

describe("processesRootedIn", () => {
  it("refuses a root that is not a pod's own directory (every process is rooted in /)", () => {
    for (const root of ["/", "", "relative/root", "/tmp", "//"])
      expect(() => processesRootedIn(root), root).toThrow(/not a pod root/);
  });
});
