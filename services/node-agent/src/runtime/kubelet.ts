import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { Pod } from "@klab/api";
import { PodWorker, type PodRecord } from "./pod-worker.ts";
import type { NodeRuntime } from "./node-runtime.ts";

/** The pod manager: one worker per pod bound to this node, adopted from disk after a restart. */
export class Kubelet {
  private workers = new Map<string, PodWorker>();
  private adoptable = new Map<string, PodRecord>();

  constructor(readonly rt: NodeRuntime) {}

  /** Reads what a previous agent left running, so those pods are taken back, not restarted. */
  loadFromDisk(): void {
    const dir = join(this.rt.config.stateDir, "pods");
    let entries: string[] = [];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const uid of entries) {
      const rec = PodWorker.loadRecord(join(dir, uid));
      if (rec) this.adoptable.set(uid, rec);
    }
  }

  get pods(): PodWorker[] {
    return [...this.workers.values()];
  }

  find(namespace: string, name: string): PodWorker | undefined {
    for (const w of this.workers.values()) {
      const m = w.currentPod.metadata;
      if ((m.namespace ?? "default") === namespace && m.name === name) return w;
    }
    return undefined;
  }

  /** An add or update from the pod informer. */
  upsert(pod: Pod): void {
    if (pod.spec?.nodeName !== this.rt.config.nodeName || !pod.metadata.uid) return;
    if (!this.rt.ready) return;
    const w = this.workers.get(pod.metadata.uid);
    if (w) return w.update(pod);
    const rec = this.adoptable.get(pod.metadata.uid);
    this.adoptable.delete(pod.metadata.uid);
    const worker = new PodWorker(pod, this.rt, rec);
    this.workers.set(pod.metadata.uid, worker);
    worker.kick();
  }

  /** The pod object is gone from the API (final delete or a forced one). */
  async remove(pod: Pod): Promise<void> {
    const uid = pod.metadata.uid;
    if (!uid) return;
    const w = this.workers.get(uid);
    if (!w) return;
    this.workers.delete(uid);
    await w.terminate(pod);
  }

  /** After the first full list: pods on disk the API no longer has are torn down. */
  async cleanupOrphans(): Promise<void> {
    for (const [uid, rec] of this.adoptable) {
      this.adoptable.delete(uid);
      const pod: Pod = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: {
          uid,
          name: rec.name,
          namespace: rec.namespace,
          deletionTimestamp: new Date().toISOString(),
          deletionGracePeriodSeconds: 0,
        },
        spec: { containers: [] },
      };
      const w = new PodWorker(pod, this.rt, rec);
      await w
        .terminate()
        .catch((err) =>
          this.rt.log.warn(
            { pod: `${rec.namespace}/${rec.name}`, err: String(err) },
            "orphan cleanup failed",
          ),
        );
    }
  }

  /** Agent shutdown: pods keep running; only the agent's timers stop. */
  stop(): void {
    for (const w of this.workers.values()) w.stop();
  }

  /** Removes worker bookkeeping after a worker finished its own termination. */
  forget(uid: string): void {
    this.workers.delete(uid);
  }
}
