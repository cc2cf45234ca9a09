/**
 * Where the kubernetes plugin's cluster state comes from. The product path is informers on the
 * API server (./informers.ts); tests may inject another source through the same interface.
 */
import type { EndpointSlice } from "@klab/api";
import { indexCluster, type ClusterIndex, type ClusterState } from "./cluster.ts";

export interface ClusterSource {
  /** Starts watching; resolves once the first full state is in. */
  start(): Promise<void>;
  stop(): void;
  hasSynced(): boolean;
  /** The current lookup tables. */
  index(): ClusterIndex;
}

export interface ClusterSourceOptions {
  /** `kubeconfig PATH [CONTEXT]` */
  kubeconfig?: { path: string; context?: string };
  /** `endpoint URL`: an API server reached without credentials. */
  endpoint?: string;
  /** In-cluster credentials directory (default /var/run/secrets/kubernetes.io/serviceaccount). */
  serviceAccountDir?: string;
  /** Pods are only watched for `pods verified`. */
  watchPods: boolean;
  watchEndpoints: boolean;
  /** Called after each change with the kind of object, for the programming-latency metric. */
  onChange?: (kind: "service" | "endpoints" | "pod" | "namespace") => void;
  /** An EndpointSlice was added or changed after the first sync (DNS programming latency). */
  onEndpointSliceChange?: (slice: EndpointSlice) => void;
  /** Watch and list failures (the informers retry by themselves). */
  onError?: (err: Error, resource: string) => void;
}

export type ClusterSourceFactory = (options: ClusterSourceOptions) => ClusterSource;

/** Rebuilds the index lazily: many watch events between two queries cost one rebuild. */
export class LazyIndex {
  private cached?: ClusterIndex;
  private modified = Math.floor(Date.now() / 1000);
  constructor(private readonly read: () => Omit<ClusterState, "modified">) {}
  invalidate(): void {
    this.cached = undefined;
    this.modified = Math.floor(Date.now() / 1000);
  }
  get(): ClusterIndex {
    if (!this.cached) this.cached = indexCluster({ ...this.read(), modified: this.modified });
    return this.cached;
  }
}
