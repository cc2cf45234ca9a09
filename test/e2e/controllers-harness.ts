/**
 * An API server with the in-process controllers, started inside the test process so controller
 * timings can be shortened, driven with the real kubectl. Also a stand-in kubelet for tests that
 * run no node agent: it marks bound pods Running and Ready with an IP from the node's podCIDR and
 * confirms graceful deletions, as a kubelet would report them.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import type { Lease, Node, Pod, Service } from "@klab/api";
import { KubeClient } from "@klab/client";
import { createServiceAllocationHooks } from "../../services/apiserver/src/allocators/service-allocation.ts";
import { parseConfig } from "../../services/apiserver/src/config.ts";
import { startControllers, type ControllerSettings } from "../../services/apiserver/src/controllers/index.ts";
import { nodeLease } from "../../services/apiserver/src/controllers/nodes/health.ts";
import { createApiServer, type ApiServer } from "../../services/apiserver/src/server.ts";

export interface KubectlResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface ControlPlane {
  server: ApiServer;
  client: KubeClient;
  kubectl(args: string[], input?: string): Promise<KubectlResult>;
  /** kubectl that must succeed; returns stdout. */
  k(args: string[], input?: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startControlPlane(settings: Partial<ControllerSettings> = {}): Promise<ControlPlane> {
  const stateDir = mkdtempSync(join(tmpdir(), "klab-controllers-"));
  const cacheDir = mkdtempSync(join(tmpdir(), "klab-kubecache-"));
  const config = parseConfig({ stateDir, port: 0 });
  const { allocator, hooks } = createServiceAllocationHooks({
    serviceCIDR: config.serviceCidr,
    nodePortRange: config.nodePortRange,
  });
  const logger = pino({ level: process.env.KLAB_TEST_LOG ?? "silent" });
  const server = await createApiServer(config, {
    hooks: { services: hooks },
    onStorageReady: (storage) => void allocator.repair(storage.list("services") as Service[]),
    onStarted: (ctx) => startControllers(ctx, { allocator, settings }),
    logger,
  });
  const client = new KubeClient({ server: server.url, caPem: server.caPem, token: server.token });
  const kubectl = (args: string[], input?: string) =>
    new Promise<KubectlResult>((res) => {
      const p = spawn("kubectl", args, {
        env: { ...process.env, KUBECONFIG: server.kubeconfigPath, KUBECACHEDIR: cacheDir },
        stdio: ["pipe", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => p.kill("SIGKILL"), 90_000);
      p.on("error", (e) => res({ stdout, stderr: stderr + String(e), code: 127 }));
      p.on("close", (code) => {
        clearTimeout(timer);
        res({ stdout, stderr, code: code ?? 137 });
      });
      p.stdin.on("error", () => {});
      p.stdin.end(input ?? "");
    });
  return {
    server,
    client,
    kubectl,
    async k(args, input) {
      const r = await kubectl(args, input);
      if (r.code !== 0)
        throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr}${r.stdout}`);
      return r.stdout;
    },
    async stop() {
      await client.close();
      await server.close();
      rmSync(stateDir, { recursive: true, force: true });
      rmSync(cacheDir, { recursive: true, force: true });
    },
  };
}

/** Polls until `fn` returns a truthy value; fails with the last value seen after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function nodeManifest(name: string, labels: Record<string, string> = {}): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Node",
    metadata: { name, labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", ...labels } },
  });
}

/** Registers nodes through the API and reports them Ready, as a kubelet does on start. */
export async function registerNodes(cp: ControlPlane, names: string[]): Promise<void> {
  for (const [i, name] of names.entries()) {
    await cp.k(["apply", "-f", "-"], nodeManifest(name));
    await postNodeReady(cp, name, `172.29.0.${3 + i}`);
  }
}

export async function postNodeReady(
  cp: ControlPlane,
  name: string,
  ip?: string,
  status: "True" | "False" = "True",
): Promise<void> {
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const patch: Record<string, unknown> = {
    status: {
      conditions: [
        {
          type: "Ready",
          status,
          reason: status === "True" ? "KubeletReady" : "KubeletNotReady",
          message: status === "True" ? "kubelet is posting ready status" : "container runtime is down",
          lastHeartbeatTime: now,
          lastTransitionTime: now,
        },
      ],
      ...(ip
        ? {
            addresses: [
              { type: "InternalIP", address: ip },
              { type: "Hostname", address: name },
            ],
          }
        : {}),
    },
  };
  await cp.client.patch("v1", "nodes", undefined, name, patch, "merge", "status");
}

/**
 * Plays the kubelet of every node: bound pods become Running and Ready with an IP from their
 * node's podCIDR; pods being deleted are confirmed gone. Returns a stop function.
 */
export function fakeKubelets(
  cp: ControlPlane,
  opts: { ready?: (pod: Pod) => boolean } = {},
): () => Promise<void> {
  let stopped = false;
  const handed = new Map<string, number>();
  const ipFor = (node: Node | undefined, uid: string): string | undefined => {
    const cidr = node?.spec?.podCIDR;
    if (!cidr) return undefined;
    const base = cidr.split("/")[0]!.split(".").slice(0, 3).join(".");
    const key = node!.metadata.name!;
    const n = (handed.get(key) ?? 1) + 1;
    handed.set(key, n);
    void uid;
    return `${base}.${n}`;
  };
  const loop = (async () => {
    while (!stopped) {
      try {
        const nodes = new Map(
          (await cp.client.list<Node>("v1", "nodes")).items.map((n) => [n.metadata.name!, n]),
        );
        for (const p of (await cp.client.list<Pod>("v1", "pods")).items) {
          const ns = p.metadata.namespace!;
          const name = p.metadata.name!;
          if (p.metadata.deletionTimestamp) {
            await cp.client.delete("v1", "pods", ns, name, { gracePeriodSeconds: 0 }).catch(() => undefined);
            continue;
          }
          if (!p.spec?.nodeName || p.status?.podIP) continue;
          const ip = ipFor(nodes.get(p.spec.nodeName), p.metadata.uid!);
          if (!ip) continue;
          const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
          const ready = opts.ready ? opts.ready(p) : true;
          const cond = (type: string, status: boolean) => ({
            type,
            status: status ? "True" : "False",
            lastProbeTime: null,
            lastTransitionTime: now,
          });
          await cp.client
            .patch(
              "v1",
              "pods",
              ns,
              name,
              {
                status: {
                  phase: "Running",
                  podIP: ip,
                  podIPs: [{ ip }],
                  hostIP: nodes.get(p.spec.nodeName)?.status?.addresses?.[0]?.address,
                  startTime: now,
                  conditions: [
                    cond("Initialized", true),
                    cond("Ready", ready),
                    cond("ContainersReady", ready),
                    cond("PodScheduled", true),
                  ],
                },
              },
              "merge",
              "status",
            )
            .catch(() => undefined);
        }
      } catch {
        // the server may be stopping
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}

/** Renews each node's Lease in kube-node-lease (kubelets: every 10 s); `silence(name)` stops one. */
export function nodeHeartbeats(
  cp: ControlPlane,
  names: string[],
  intervalMs = 500,
): { silence(name: string): void; resume(name: string): void; stop(): void } {
  const live = new Set(names);
  const renew = async (name: string) => {
    const renewTime = new Date().toISOString().replace("Z", "000Z");
    const lease = await cp.client.get<Lease>("coordination.k8s.io/v1", "leases", "kube-node-lease", name);
    if (!lease) {
      await cp.client.create(nodeLease(name, undefined, renewTime));
      return;
    }
    await cp.client.patch("coordination.k8s.io/v1", "leases", "kube-node-lease", name, {
      spec: { renewTime },
    });
  };
  const tick = () => {
    for (const n of live) void renew(n).catch(() => undefined);
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  return {
    silence: (name) => live.delete(name),
    resume: (name) => {
      live.add(name);
      tick();
    },
    stop: () => clearInterval(timer),
  };
}
